// The broker's topics: their persisted definitions (partition count, config overrides, id)
// and their open partitions. Topic definitions live in <data>/topics/<name>/topic.json,
// written atomically (temp file, fsync, rename, fsync directory); partition logs live in
// <data>/topics/<name>/<partition>/.
//
// Lifecycle: open() loads every topic and recovers its partitions; create/delete/alter are
// serialised per topic name through `pending`, so an auto-create racing an explicit create
// or a second auto-create resolves to one topic.
import { randomUUID } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { DbError } from "../../shared/errors.js";
import type { Logger } from "../../shared/log.js";
import type { BrokerConfig, TopicConfig } from "../config.js";
import { parseTopicConfigValue } from "../config.js";
import { Partition } from "./partition.js";

export interface TopicDefinition {
  name: string;
  topicId: string;
  partitions: number;
  /** Only the overrides; effective values merge them over the broker's topic defaults. */
  configs: Partial<Record<keyof TopicConfig, string>>;
  createdAtMs: number;
}

export interface Topic {
  definition: TopicDefinition;
  config: TopicConfig;
  partitions: Partition[];
}

export interface TopicManagerHooks {
  onFsync?: (seconds: number) => void;
  onOffsets?: (topic: string, partition: number, logEnd: bigint, hw: bigint) => void;
  onPartitionClosed?: (topic: string, partition: number) => void;
}

/** The partition-log settings a topic's config decides. */
function logSettingsOf(config: TopicConfig) {
  return {
    segmentBytes: config["segment.bytes"],
    segmentMs: config["segment.ms"],
    indexIntervalBytes: config["index.interval.bytes"],
    retentionMs: config["retention.ms"],
    retentionBytes: config["retention.bytes"],
  };
}

const legalTopicName = /^[a-zA-Z0-9._-]+$/;

export function topicNameError(name: string, lengthMax: number): string | null {
  if (name.length === 0) return "topic name is empty";
  if (name === "." || name === "..") return `topic name '${name}' is not allowed`;
  if (name.length > lengthMax) return `topic name longer than ${lengthMax} characters`;
  if (!legalTopicName.test(name))
    return `topic name '${name}' has characters outside [a-zA-Z0-9._-]`;
  return null;
}

async function writeFileAtomic(dir: string, name: string, content: string): Promise<void> {
  const temp = join(dir, `${name}.tmp`);
  const handle = await open(temp, "w");
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, join(dir, name));
  await fsyncDir(dir);
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Where topic creation goes in a cluster: through the controller group, not straight here. */
export interface ReplicatedTopicCreator {
  createTopic(
    name: string,
    partitions: number,
    configs: TopicDefinition["configs"],
  ): Promise<Topic>;
  /** Deletes the topic cluster-wide; resolves once this broker has removed it. */
  deleteTopic(name: string, topicId: string): Promise<void>;
}

export class TopicManager {
  private readonly topics = new Map<string, Topic>();
  private readonly pending = new Map<string, Promise<unknown>>();
  private readonly topicsDir: string;
  private creator: ReplicatedTopicCreator | null = null;

  constructor(
    private readonly config: BrokerConfig,
    private readonly logger: Logger,
    private readonly hooks: TopicManagerHooks = {},
  ) {
    this.topicsDir = join(config.dataDir, "topics");
  }

  async open(): Promise<void> {
    await mkdir(this.topicsDir, { recursive: true });
    for (const entry of await readdir(this.topicsDir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      if (entry.name.includes("@")) {
        await rm(join(this.topicsDir, entry.name), { recursive: true, force: true });
        continue;
      }
      const path = join(this.topicsDir, entry.name, "topic.json");
      let definition: TopicDefinition;
      try {
        definition = JSON.parse(await readFile(path, "utf8")) as TopicDefinition;
      } catch (error) {
        // A topic directory without a readable definition was being created when the
        // broker stopped: CreateTopics never answered, so nothing acknowledged lives there.
        this.logger.warn("dropping half-created topic", { topic: entry.name, error });
        await rm(join(this.topicsDir, entry.name), { recursive: true, force: true });
        continue;
      }
      await this.openTopic(definition);
    }
    this.logger.info("topics loaded", { topics: this.topics.size });
  }

  /**
   * Clustered brokers: creation and deletion go through `creator` (the controller group),
   * which calls createLocal()/deleteLocal() on every broker as it applies them; changes that
   * are not replicated this way (alter configs) are refused rather than let replicas differ.
   */
  replicateWith(creator: ReplicatedTopicCreator): void {
    this.creator = creator;
  }

  /** Creates a topic from a definition the controller group committed; idempotent. */
  async createLocal(definition: TopicDefinition): Promise<Topic> {
    const existing = this.topics.get(definition.name);
    if (existing !== undefined) return existing;
    const dir = join(this.topicsDir, definition.name);
    await mkdir(dir, { recursive: true });
    await writeFileAtomic(dir, "topic.json", JSON.stringify(definition, null, 2));
    return this.openTopic(definition);
  }

  private refuseIfReplicated(what: string): void {
    if (this.creator !== null) {
      throw new DbError("INVALID_ARGUMENT", `${what} is not supported on a clustered broker yet`);
    }
  }

  get(name: string): Topic | undefined {
    return this.topics.get(name);
  }

  list(): Topic[] {
    return [...this.topics.values()];
  }

  effectiveConfig(overrides: TopicDefinition["configs"]): TopicConfig {
    const config = { ...this.config.topicDefaults };
    for (const [key, value] of Object.entries(overrides)) {
      if (value === undefined) continue;
      Object.assign(config, { [key]: parseTopicConfigValue(key, value) });
    }
    return config;
  }

  /** Checks a create request; throws DbError with the reason. */
  validateCreate(name: string, partitions: number, configs: TopicDefinition["configs"]): void {
    const nameError = topicNameError(name, this.config.limits.topicNameLengthMax);
    if (nameError !== null) throw new DbError("INVALID_ARGUMENT", nameError);
    if (this.topics.has(name) || this.pending.has(name)) {
      throw new DbError("ALREADY_EXISTS", `topic '${name}' already exists`);
    }
    if (this.topics.size >= this.config.limits.topicsMax) {
      throw new DbError("LIMIT_EXCEEDED", `broker already has ${this.topics.size} topics`);
    }
    const max = this.config.limits.partitionsPerTopicMax;
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > max) {
      throw new DbError("LIMIT_EXCEEDED", `partitions must be 1..${max}, got ${partitions}`);
    }
    this.effectiveConfig(configs);
  }

  async create(
    name: string,
    partitions: number,
    configs: TopicDefinition["configs"] = {},
  ): Promise<Topic> {
    this.validateCreate(name, partitions, configs);
    const work =
      this.creator === null
        ? this.createNow(name, partitions, configs)
        : this.creator.createTopic(name, partitions, configs);
    this.pending.set(name, work);
    try {
      return await work;
    } finally {
      this.pending.delete(name);
    }
  }

  private async createNow(
    name: string,
    partitions: number,
    configs: TopicDefinition["configs"],
  ): Promise<Topic> {
    const definition: TopicDefinition = {
      name,
      topicId: randomUUID(),
      partitions,
      configs,
      createdAtMs: Date.now(),
    };
    const dir = join(this.topicsDir, name);
    await mkdir(dir, { recursive: true });
    await writeFileAtomic(dir, "topic.json", JSON.stringify(definition, null, 2));
    await fsyncDir(this.topicsDir);
    const topic = await this.openTopic(definition);
    this.logger.info("topic created", { topic: name, partitions });
    return topic;
  }

  /** Returns the topic, creating it with defaults when auto-creation is on. */
  async getOrAutoCreate(name: string): Promise<Topic | undefined> {
    const existing = this.topics.get(name);
    if (existing !== undefined) return existing;
    const inFlight = this.pending.get(name);
    if (inFlight !== undefined) {
      await inFlight.catch(() => undefined);
      return this.topics.get(name);
    }
    if (!this.config.autoCreateTopics) return undefined;
    return this.create(name, this.config.defaultPartitions);
  }

  private async openTopic(definition: TopicDefinition): Promise<Topic> {
    const config = this.effectiveConfig(definition.configs);
    const topic: Topic = { definition, config, partitions: [] };
    for (let index = 0; index < definition.partitions; index++) {
      topic.partitions.push(await this.openPartition(definition.name, index, config));
    }
    this.topics.set(definition.name, topic);
    return topic;
  }

  private openPartition(name: string, index: number, config: TopicConfig): Promise<Partition> {
    return Partition.open({
      topic: name,
      index,
      logConfig: {
        dir: join(this.topicsDir, name, String(index)),
        ...logSettingsOf(config),
        flush: this.config.logFlush,
        groupCommitDelayMs: this.config.groupCommitDelayMs,
      },
      producersMax: this.config.limits.producersPerPartitionMax,
      waitersMax: this.config.limits.connectionsMax,
      logger: this.logger.child(`${name}-${index}`),
      onFsync: this.hooks.onFsync,
      onOffsets: (logEnd, hw) => this.hooks.onOffsets?.(name, index, logEnd, hw),
    });
  }

  async addPartitions(name: string, total: number, validateOnly: boolean): Promise<void> {
    this.refuseIfReplicated("adding partitions");
    this.checkAddPartitions(name, total);
    if (validateOnly) return;
    await this.addPartitionsLocal(name, total);
  }

  /** Throws unless `name` may grow to `total` partitions. */
  checkAddPartitions(name: string, total: number): void {
    const topic = this.topics.get(name);
    if (topic === undefined) throw new DbError("NOT_FOUND", `unknown topic '${name}'`);
    const current = topic.definition.partitions;
    if (!Number.isInteger(total) || total <= current) {
      throw new DbError(
        "INVALID_ARGUMENT",
        `topic '${name}' has ${current} partitions; the new count must be larger`,
      );
    }
    if (total > this.config.limits.partitionsPerTopicMax) {
      throw new DbError(
        "LIMIT_EXCEEDED",
        `partitions must be <= ${this.config.limits.partitionsPerTopicMax}`,
      );
    }
  }

  /** Grows a topic to `total` partitions (also as the controller group committed it). */
  async addPartitionsLocal(name: string, total: number): Promise<void> {
    const topic = this.topics.get(name);
    if (topic === undefined) throw new DbError("NOT_FOUND", `unknown topic '${name}'`);
    const current = topic.definition.partitions;
    if (total <= current) return;
    const definition = { ...topic.definition, partitions: total };
    for (let index = current; index < total; index++) {
      topic.partitions.push(await this.openPartition(name, index, topic.config));
    }
    await writeFileAtomic(join(this.topicsDir, name), "topic.json", JSON.stringify(definition));
    topic.definition = definition;
  }

  async alterConfigs(name: string, configs: TopicDefinition["configs"], validateOnly: boolean) {
    this.refuseIfReplicated("altering topic configs");
    const topic = this.topics.get(name);
    if (topic === undefined) throw new DbError("NOT_FOUND", `unknown topic '${name}'`);
    const config = this.effectiveConfig(configs);
    if (validateOnly) return;
    const definition = { ...topic.definition, configs };
    await writeFileAtomic(join(this.topicsDir, name), "topic.json", JSON.stringify(definition));
    topic.definition = definition;
    topic.config = config;
    // Retention takes effect at the next retention pass, segment settings at the next roll.
    for (const partition of topic.partitions) partition.reconfigure(logSettingsOf(config));
  }

  async delete(name: string): Promise<void> {
    const topic = this.topics.get(name);
    if (topic === undefined) throw new DbError("NOT_FOUND", `unknown topic '${name}'`);
    if (this.creator !== null) return this.creator.deleteTopic(name, topic.definition.topicId);
    await this.deleteLocal(name);
  }

  /** Removes a topic here (also as the controller group committed its deletion). */
  async deleteLocal(name: string): Promise<void> {
    const topic = this.topics.get(name);
    if (topic === undefined) return;
    this.topics.delete(name);
    for (const partition of topic.partitions) {
      await partition.close();
      this.hooks.onPartitionClosed?.(name, partition.index);
    }
    // Rename first so a crash halfway through the removal never leaves a half-deleted
    // topic that would load again at the next start.
    // "@" never appears in a topic name, so open() knows such a folder for a leftover.
    const doomed = join(this.topicsDir, `${name}@${randomUUID()}`);
    await rename(join(this.topicsDir, name), doomed);
    await fsyncDir(this.topicsDir);
    await rm(doomed, { recursive: true, force: true });
    this.logger.info("topic deleted", { topic: name });
  }

  async applyRetention(nowMs: number): Promise<number> {
    let deleted = 0;
    for (const topic of this.topics.values()) {
      for (const partition of topic.partitions) deleted += await partition.applyRetention(nowMs);
    }
    return deleted;
  }

  async close(): Promise<void> {
    for (const topic of this.topics.values()) {
      for (const partition of topic.partitions) await partition.close();
    }
    this.topics.clear();
  }
}
