// The restore service a node runs beside its materializer and gateway: restoreTable jobs,
// periodic table checkpoints and on-demand backups (README.md). A job replays the source's
// log into a scratch store, creates the target as an ordinary table and appends the
// replayed items to the target's own topic as PutItems; the restore registry (status.ts)
// keeps the target refused everywhere until all of it is durable and applied.
//
// Lifecycle: start() opens the registry and the checkpoint timer; stop() waits for nothing
// (a job cut short stays RESTORING in the log, and running it again resumes it).
// Concurrency: jobs run concurrently up to restoresMax, each on its own scratch store.
import { randomUUID } from "node:crypto";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Admin } from "kafkajs";
import { decodeStoredItem, encodeEvent, type TableDefinition } from "../../schemas/events.js";
import type { LogClient } from "../../services/log-client.js";
import { DbError } from "../../services/shared/errors.js";
import type { Logger } from "../../services/shared/log.js";
import type { Materializer } from "../materializer.js";
import { validateTableDefinition } from "../catalog/table.js";
import { CATALOG_TOPIC, tableTopic, type CatalogEntry } from "../state/records.js";
import { replayInWorker, type ScratchTable } from "./replay.js";
import { checkTableItems, deriveGlobalIndexes, stateAsOf, tableAsOfBase } from "./as-of.js";
import type { KvReader, MemoryStore } from "../store/store.js";
import type { AttributeValue } from "../values/attribute-value.js";
import {
  RestoreRegistry,
  type BackupRecord,
  type RestoreRecord,
  type RestoreState,
} from "./status.js";
import {
  listTableCheckpoints,
  readTableCheckpoint,
  removeInterrupted,
  writeTableCheckpoint,
  type StoredCheckpoint,
  type TableCheckpointManifest,
} from "./table-checkpoint.js";
import {
  checkpointsToDelete,
  chooseBase,
  cutOffsets,
  eventsToReplay,
  logStartOffsets,
} from "./time-offsets.js";
import type { ReplayBase } from "./time-offsets.js";
import type { TlsClientFiles } from "../../services/shared/tls.js";
import { ensureTopicRetention, requiredRetentionMs } from "./retention.js";
import { definitionAt } from "./definition-at.js";
import { RESTORE_FENCE_RECORD_KEY } from "./fence.js";
import {
  AsOfCache,
  defaultAsOfCacheOptions,
  type AsOfCacheOptions,
  type AsOfCacheStats,
} from "./as-of-cache.js";
import {
  isS3Url,
  parseS3Url,
  S3Backups,
  s3Url,
  splitBackupUrl,
  type S3Options,
} from "./s3-backups.js";

export interface RestoreServiceOptions {
  materializer: Materializer;
  log: LogClient;
  /** The brokers, for the replay worker's own Kafka client. */
  brokers: string[];
  /** SSL to the brokers, for that client; absent: plaintext. */
  kafkaTls?: TlsClientFiles;
  /** The node's materializer data folder; restore data goes under DATA/restore. */
  dataDir: string;
  logger: Logger;
  /** One checkpoint per table this often (0: none). Default 1 h. */
  checkpointIntervalMs?: number;
  /** How far back restores reach (default 35 days). */
  recoveryWindowMs?: number;
  /** Items a restore appends per second at most (0: no limit), to spare live traffic. */
  restoreItemsPerSecondMax?: number;
  /** Restores running at once at most. */
  restoresMax?: number;
  /**
   * A restore whose records have been silent this long (its owner writes a heartbeat six
   * times per period) is taken over by this node. Default RESTORE_TAKEOVER_DEFAULT_MS
   * (10 s); 0: never take over.
   */
  restoreTakeoverAfterMs?: number;
  /** Endpoint, region, addressing and credentials of s3:// backup locations (s3-backups.ts). */
  s3?: S3Options;
  /** Whole-table states at an instant kept for paged GSI reads asOf (as-of-cache.ts). */
  asOfCache?: Partial<AsOfCacheOptions>;
  /**
   * Set on a replica-set member (`materializer --replica-set S --restore`), whose store holds
   * only the partitions it owns: a restore waits for the target's owners instead of its own
   * store, a backup is replayed from the log (and checkpoints) instead of read from the
   * store, and no periodic checkpoint is written (README.md "Restores on replica-set
   * members").
   */
  member?: RestoreMember;
  /**
   * The name other nodes and gateways know this node by (a materializer's --node-id), put in
   * the log's record of each directory backup it writes; absent: its restore node id.
   */
  nodeName?: string;
}

/**
 * A backup as listed: its manifest (without the definition), where it lives, and whether
 * this node can restore it (a directory backup on another node's disk: not from here).
 */
export type BackupInfo = Omit<TableCheckpointManifest, "definition"> & {
  /** s3://bucket/prefix, or null for a node's backup folder. */
  location: string | null;
  /** The node whose folder holds it; null on S3. */
  node: string | null;
  available: boolean;
};

/**
 * A restore or deletion of a folder backup that another node holds (NOT_FOUND): one that is
 * not running (a stateless gateway knows), or, at a node, simply not this one.
 */
export class BackupUnavailableError extends DbError {
  constructor(
    readonly backup: string,
    readonly node: string,
    notRunning: boolean,
  ) {
    super(
      "NOT_FOUND",
      `backup ${backup} is in the backup folder of node ${node}` +
        (notRunning
          ? `, which is not running: it can be restored once ${node} runs again`
          : `, not of this node: restore it on ${node}`),
    );
  }
}

/** How a replica-set member reaches the owners of partitions it does not own. */
export interface RestoreMember {
  /**
   * Resolves once an owner of (topic, partition) of `table` has applied every record below
   * `offset` and sent their change events to the changes topic (RPC `published`).
   */
  waitPublished(
    table: string,
    topic: string,
    partition: number,
    offset: bigint,
    timeoutMs: number,
  ): Promise<void>;
}

export type RestorePhase =
  "PREPARING" | "DOWNLOADING" | "REPLAYING" | "LOADING" | "INDEXING" | "DONE";

/** What restoreStatus answers: the registry's state and, on the node running it, progress. */
export interface RestoreStatus {
  target: string;
  source: string;
  timeMs: number;
  state: RestoreState;
  phase: RestorePhase | null;
  eventsReplayed: bigint;
  eventsTotal: bigint;
  itemsWritten: number;
  itemsTotal: number;
  checkpoint: string | null;
  message: string | null;
  /** Whether this node is running the job now. */
  running: boolean;
}

interface Job {
  status: RestoreStatus;
  done: Promise<void>;
  /** Marks this job's records, so a failure is recorded only over the job's own record. */
  id: string;
  /** The target's generation once this job created or resumed it. */
  generation: bigint | null;
  /** The node running it (its id): the one that resumes it after a crash. */
  owner: string;
  /** The owner epoch it claimed in logkv.restores (status.ts, fenced). */
  epoch: number;
  /** Catalog end offset before the target's CreateTable, once known (its records keep it). */
  catalogAfter: string | null;
  /** Set once another job holds the restore: this one stops without recording anything. */
  fenced: boolean;
  /** The heartbeat record in flight, if any. */
  beating: Promise<unknown> | null;
}

const DAY_MS = 24 * 3600 * 1000;

/**
 * How long another node's restore must be silent before this node takes it over. Short: a
 * dead owner costs this much delay, while taking over an owner that is only slow (a pause
 * longer than this) costs only repeated work, never a wrong table: its records are fenced
 * by the owner epoch and its late writes dropped at apply time (fence.ts). Six heartbeats
 * per period, so it takes six lost or late ones in a row.
 */
export const RESTORE_TAKEOVER_DEFAULT_MS = 10_000;
const ITEMS_IN_FLIGHT_MAX = 2_000;
const APPLY_WAIT_MIN_MS = 60_000;

export class RestoreService {
  private readonly jobs = new Map<string, Job>();
  private registry: RestoreRegistry | null = null;
  private admin: Admin | null = null;
  private timer: NodeJS.Timeout | null = null;
  private checkpointing: Promise<unknown> = Promise.resolve();
  private readonly root: string;
  private readonly lastCheckpoint = new Map<string, string>();
  private s3Client: S3Backups | null = null;
  private watcher: NodeJS.Timeout | null = null;
  /** Targets this node is taking over (between the decision and the job's launch). */
  private readonly takingOver = new Set<string>();
  /** Records a takeover could not start from (a source gone, say): not tried every tick. */
  private readonly notTakenOver = new WeakSet<RestoreRecord>();
  /** This node's id (DATA/restore/node-id): whose unfinished restores it resumes. */
  private nodeId = "";
  private stopping = false;
  /** Whole-table states at an instant, with their GSIs derived: paged GSI reads asOf. */
  private readonly asOfStates: AsOfCache<{ reader: KvReader; entry: CatalogEntry; items: number }>;

  constructor(private readonly options: RestoreServiceOptions) {
    this.root = join(options.dataDir, "restore");
    this.asOfStates = new AsOfCache({ ...defaultAsOfCacheOptions, ...options.asOfCache });
  }

  /** Hits, misses and what the cache of whole-table states at an instant holds. */
  asOfCacheStats(): AsOfCacheStats {
    return this.asOfStates.stats();
  }

  get checkpointsRoot(): string {
    return join(this.root, "checkpoints");
  }

  get backupsRoot(): string {
    return join(this.root, "backups");
  }

  /** How far back restores of `table` reach: its own window, else the node's default. */
  windowMs(table: string): number {
    return this.registry?.window(table) ?? this.options.recoveryWindowMs ?? 35 * DAY_MS;
  }

  /** Sets a table's recovery window (recorded in the log) and its topic's retention. */
  async setRecoveryWindow(table: string, windowMs: number): Promise<number> {
    const entry = this.options.materializer.table(table);
    if (entry === undefined) throw new DbError("NOT_FOUND", `Table not found: ${table}`);
    if (!Number.isSafeInteger(windowMs) || windowMs < DAY_MS || windowMs > 3650 * DAY_MS) {
      throw new DbError("INVALID_ARGUMENT", "a recovery window is 1 to 3650 days");
    }
    await this.requireRegistry().record({
      kind: "window",
      target: table,
      windowMs,
      source: table,
      timeMs: Date.now(),
      state: "ACTIVE",
    });
    return this.ensureRetention(entry);
  }

  /** Raises the table topic's retention.ms to cover its window; the value in force. */
  async ensureRetention(entry: CatalogEntry): Promise<number> {
    const topic = tableTopic(entry.definition.name, entry.generation);
    const interval = this.options.checkpointIntervalMs ?? 3600_000;
    const required = requiredRetentionMs(this.windowMs(entry.definition.name), interval);
    return ensureTopicRetention(this.requireAdmin(), topic, required);
  }

  private async ensureRetentionAll(): Promise<void> {
    for (const entry of this.options.materializer.applier.tables()) {
      await this.ensureRetention(entry).catch((error: unknown) =>
        this.options.logger.warn("could not set retention", {
          table: entry.definition.name,
          error,
        }),
      );
    }
  }

  async start(): Promise<void> {
    await mkdir(join(this.root, "work"), { recursive: true });
    await rm(join(this.root, "work"), { recursive: true, force: true });
    this.nodeId = await this.loadNodeId();
    this.registry = await RestoreRegistry.open(this.options.log.kafkaClient);
    this.admin = this.options.log.kafkaClient.admin();
    await this.admin.connect();
    // Before the node serves: its unfinished restores are running again (restoreStatus
    // says so) by the time anyone can ask. Bounded: a catalog wait, a manifest fetch each.
    await this.resumeUnfinished().catch((error: unknown) =>
      this.options.logger.warn("could not resume restores", { error }),
    );
    // In the background: startup must not wait on one DescribeConfigs per table.
    this.checkpointing = this.ensureRetentionAll();
    const takeoverMs = this.takeoverAfterMs;
    if (takeoverMs > 0) {
      this.watcher = setInterval(() => this.takeOverSilent(), this.heartbeatMs);
      this.watcher.unref();
    }
    const every = this.options.checkpointIntervalMs ?? 3600_000;
    if (this.options.member !== undefined && every > 0) {
      // Its store holds only its own partitions: a checkpoint of it would not be a table.
      this.options.logger.info("no periodic checkpoints on a replica-set member");
    } else if (every > 0) {
      this.timer = setInterval(() => {
        this.checkpointAll().catch((error: unknown) =>
          this.options.logger.error("checkpoint failed", { error }),
        );
      }, every);
      this.timer.unref();
    }
  }

  /** A random id kept in DATA/restore/node-id, made on the first start. */
  private async loadNodeId(): Promise<string> {
    const path = join(this.root, "node-id");
    const known = await readFile(path, "utf8").catch(() => "");
    if (/^[0-9a-f-]{36}$/.test(known.trim())) return known.trim();
    const id = randomUUID();
    await mkdir(this.root, { recursive: true });
    await writeFile(path, id);
    return id;
  }

  private get takeoverAfterMs(): number {
    return this.options.restoreTakeoverAfterMs ?? RESTORE_TAKEOVER_DEFAULT_MS;
  }

  /** How often a running job writes a heartbeat record (and the watcher looks). */
  private get heartbeatMs(): number {
    return Math.max(50, Math.floor((this.takeoverAfterMs || RESTORE_TAKEOVER_DEFAULT_MS) / 6));
  }

  /**
   * Restarts the restores this node was running when it stopped or was killed (their last
   * record is CREATING or RESTORING and names this node): the same source and instant, so
   * the run resumes as a manual rerun would. A FAILED restore is left for a person to rerun
   * or drop. Restores of other nodes are theirs, until their records fall silent
   * (takeOverSilent).
   */
  private async resumeUnfinished(): Promise<void> {
    const mine = this.requireRegistry()
      .all()
      .filter(
        (r) => (r.state === "CREATING" || r.state === "RESTORING") && r.owner === this.nodeId,
      );
    if (mine.length === 0) return;
    await this.catalogApplied();
    for (const record of mine) {
      if (this.stopping) return;
      await this.rerun(record, "restore resumed");
    }
  }

  /**
   * The catalog applied to its end: a target created before its owner died is known, so
   * the resumed or taken-over run reuses it instead of asking for it again.
   */
  private async catalogApplied(): Promise<void> {
    const [catalogEnd] = await this.options.log.endOffsets(CATALOG_TOPIC);
    await this.options.materializer
      .waitApplied(CATALOG_TOPIC, 0, catalogEnd ?? 0n, APPLY_WAIT_MIN_MS)
      .catch(() => undefined);
  }

  /** Runs the restore of `record` again here (same source and instant); false if it could not. */
  private async rerun(record: RestoreRecord, what: string): Promise<boolean> {
    const { target, source, timeMs } = record;
    try {
      if (source.startsWith("backup:s3://")) {
        const { location, name } = splitBackupUrl(source.slice("backup:".length));
        await this.restoreBackup({ backup: name, target, location: s3Url(location) });
      } else if (source.startsWith("backup:")) {
        await this.restoreBackup({ backup: source.slice("backup:".length), target });
      } else {
        this.restoreTable({ source, target, timeMs, resuming: true });
      }
      this.options.logger.info(what, { target, source, from: record.owner });
      return true;
    } catch (error) {
      this.options.logger.warn(`could not run again: ${what}`, { target, source, error });
      return false;
    }
  }

  /**
   * Takes over the unfinished restores whose records have been silent for the takeover
   * period (their owner died, or stopped and has not come back): the run claims the next
   * owner epoch, so the old owner, if it was only slow, is fenced off at its next record
   * (status.ts, fenced). Restores from another node's local backup folder are left alone
   * (the backup is not here).
   */
  private takeOverSilent(): void {
    const registry = this.registry;
    if (registry === null || this.stopping) return;
    for (const record of registry.all()) {
      const { target } = record;
      if (record.state !== "CREATING" && record.state !== "RESTORING") continue;
      if (this.jobs.has(target) || this.takingOver.has(target)) continue;
      if (this.notTakenOver.has(record)) continue;
      if (registry.silentForMs(target) < this.takeoverAfterMs) continue;
      const localBackup =
        record.source.startsWith("backup:") && !record.source.startsWith("backup:s3://");
      if (localBackup && record.owner !== this.nodeId) continue;
      if (this.jobs.size >= (this.options.restoresMax ?? 4)) return;
      this.takingOver.add(target);
      void (async () => {
        try {
          await this.catalogApplied();
          // Still silent, and nobody here started it meanwhile?
          const now = registry.get(target);
          if (now !== record || this.jobs.has(target) || this.stopping) return;
          if (!(await this.rerun(record, "restore taken over"))) this.notTakenOver.add(record);
        } finally {
          this.takingOver.delete(target);
        }
      })();
    }
  }

  /**
   * Whether a table may be served as far as the registry knows (no unfinished restore into
   * it). A table whose catalog entry still names its restore is refused besides (args.ts).
   */
  servable(name: string, generation: bigint): boolean {
    return this.registry?.servable(name, generation) ?? true;
  }

  /** The restore into `target`: this node's job if it runs one, else the registry's record. */
  status(target: string): RestoreStatus | null {
    const job = this.jobs.get(target);
    if (job !== undefined) return { ...job.status };
    const record = this.registry?.get(target);
    return record === undefined ? null : statusOfRecord(record);
  }

  /** Every restore the registry knows, with this node's progress where it runs one. */
  statuses(): RestoreStatus[] {
    return (this.registry?.all() ?? []).map((r) => this.status(r.target) ?? statusOfRecord(r));
  }

  /** Resolves when the job into `target` ends (at once when none runs here). */
  async settled(target: string): Promise<void> {
    await this.jobs.get(target)?.done;
  }

  // ---- restoreTable ----------------------------------------------------------------------

  /**
   * Starts restoring `source` as of `timeMs` into a new table `target`; returns the first
   * status at once (the job goes on in the background). Running the same restore again
   * after a crash resumes it.
   */
  restoreTable(request: {
    source: string;
    target: string;
    timeMs: number;
    resuming?: boolean;
  }): RestoreStatus {
    const { source, target, timeMs } = request;
    const running = this.sameRunning(target, source, timeMs);
    if (running !== null) return running;
    const entry = this.options.materializer.table(source);
    if (entry === undefined) throw new DbError("NOT_FOUND", `Table not found: ${source}`);
    if (!Number.isSafeInteger(timeMs) || timeMs > Date.now()) {
      throw new DbError("INVALID_ARGUMENT", "the restore time must not be in the future");
    }
    // A restore begun inside the window is finished even if the window has moved past T.
    if (request.resuming !== true && timeMs < Date.now() - this.windowMs(source)) {
      throw new DbError("INVALID_ARGUMENT", "the restore time is before the recovery window");
    }
    validateTableDefinition({ ...entry.definition, name: target });
    this.checkTarget(target, source, timeMs);
    return this.launch(target, source, timeMs, (job) => this.runRestore(job, entry));
  }

  /** The status of this same restore if this node runs it now (asking again is no error). */
  private sameRunning(target: string, source: string, timeMs: number): RestoreStatus | null {
    const job = this.jobs.get(target);
    const same = job !== undefined && job.status.source === source && job.status.timeMs === timeMs;
    return same ? { ...job.status } : null;
  }

  /** Refuses a target that exists, unless it is this same restore left unfinished. */
  private checkTarget(target: string, source: string, timeMs: number): void {
    if (this.jobs.has(target)) {
      throw new DbError("ALREADY_EXISTS", `a restore into ${target} is running`);
    }
    if (this.jobs.size >= (this.options.restoresMax ?? 4)) {
      throw new DbError("LIMIT_EXCEEDED", "too many restores running");
    }
    const record = this.registry?.get(target);
    const resumable =
      record !== undefined &&
      record.state !== "ACTIVE" &&
      record.source === source &&
      record.timeMs === timeMs;
    const existing = this.options.materializer.table(target);
    const unfinished =
      existing !== undefined &&
      (existing.restore !== undefined || !this.servable(target, existing.generation));
    if (existing !== undefined && !(resumable && unfinished)) {
      throw new DbError("ALREADY_EXISTS", `Table already exists: ${target}`);
    }
  }

  private launch(
    target: string,
    source: string,
    timeMs: number,
    run: (job: Job) => Promise<void>,
  ): RestoreStatus {
    // A resumed restore whose target exists is RESTORING from the start, as its record says.
    const known = this.registry?.get(target);
    const resumed =
      known?.state === "RESTORING" && known.source === source && known.timeMs === timeMs;
    const status: RestoreStatus = {
      target,
      source,
      timeMs,
      state: resumed ? "RESTORING" : "CREATING",
      phase: "PREPARING",
      eventsReplayed: 0n,
      eventsTotal: 0n,
      itemsWritten: 0,
      itemsTotal: 0,
      checkpoint: null,
      message: null,
      running: true,
    };
    const job: Job = {
      status,
      done: Promise.resolve(),
      id: randomUUID(),
      generation: null,
      owner: this.nodeId,
      epoch: (known?.epoch ?? 0) + 1,
      catalogAfter: null,
      fenced: false,
      beating: null,
    };
    this.jobs.set(target, job);
    let heartbeat: NodeJS.Timeout | null = null;
    const claimAndRun = async () => {
      await this.claim(job, known);
      heartbeat = setInterval(() => this.beat(job), this.heartbeatMs);
      heartbeat.unref();
      try {
        await run(job);
      } finally {
        clearInterval(heartbeat);
        await job.beating;
      }
    };
    job.done = claimAndRun()
      .catch(async (error: unknown) => {
        if (heartbeat !== null) clearInterval(heartbeat);
        await job.beating;
        const message = error instanceof Error ? error.message : String(error);
        status.state = "FAILED";
        status.message = message;
        if (job.fenced) {
          this.options.logger.warn("restore taken over by another job", { target });
          return;
        }
        this.options.logger.error("restore failed", { target, error });
        // Only over this job's own record: a job that lost a race for the target (another
        // node's restore created it) must not overwrite that restore's state. The record
        // keeps the generation, so a failed restore's partial table stays refused.
        if (this.registry?.get(status.target)?.jobId !== job.id) return;
        // Cut short by this node stopping: left unfinished, to be resumed at its next start.
        if (this.stopping) return;
        await this.registry
          .record({ ...recordOf(job), state: "FAILED", message })
          .catch(() => undefined);
      })
      .finally(() => {
        status.running = false;
        this.jobs.delete(target);
      });
    return { ...status };
  }

  /**
   * The job's first record: it claims the next owner epoch of the target. An unfinished
   * restore it resumes or takes over keeps its state, generation and catalogAfter (so the
   * partial target stays refused). Throws if another job's claim came first in the log.
   */
  private async claim(job: Job, known: RestoreRecord | undefined): Promise<void> {
    const unfinished = known !== undefined && known.state !== "ACTIVE";
    const same =
      unfinished && known.source === job.status.source && known.timeMs === job.status.timeMs;
    if (same && known.catalogAfter !== undefined) job.catalogAfter = known.catalogAfter;
    if (same && known.generation !== undefined && known.state !== "CREATING") {
      job.generation = BigInt(known.generation);
    }
    await this.mark(job);
  }

  /** Appends the job's current record; throws (and marks the job fenced) if it lost. */
  private async mark(job: Job, extra: Partial<RestoreRecord> = {}): Promise<void> {
    const registry = this.requireRegistry();
    await registry.record({ ...recordOf(job), ...extra });
    this.checkOwner(job);
  }

  /** Throws once another job holds the target's restore (a later epoch, or a race lost). */
  private checkOwner(job: Job): void {
    if (!job.fenced && this.registry?.get(job.status.target)?.jobId === job.id) return;
    job.fenced = true;
    throw new DbError(
      "ABORTED",
      `the restore into ${job.status.target} is held by another job (epoch > ${job.epoch})`,
    );
  }

  /** A heartbeat record with the job's progress, one at a time. */
  private beat(job: Job): void {
    if (job.beating !== null || job.fenced || this.stopping) return;
    job.beating = this.mark(job)
      .catch((error: unknown) => {
        if (!job.fenced) this.options.logger.warn("restore heartbeat failed", { error });
      })
      .finally(() => (job.beating = null));
  }

  private async runRestore(job: Job, entry: CatalogEntry): Promise<void> {
    const status = job.status;
    const topic = tableTopic(entry.definition.name, entry.generation);
    const partitions = entry.definition.partitions;
    const admin = this.requireAdmin();
    const cut = await cutOffsets(admin, topic, partitions, status.timeMs);
    const start = await logStartOffsets(admin, topic, partitions);
    const checkpoints = await this.checkpointsOf(entry.definition.name);
    const base = chooseBase(checkpoints, entry.generation, cut, start);
    if (base === null) {
      throw new DbError("OFFSET_OUT_OF_RANGE", "no checkpoint and log reach back that far");
    }
    status.eventsTotal = eventsToReplay(base, cut);
    status.checkpoint = base.checkpoint?.manifest.name ?? null;
    status.phase = "REPLAYING";
    // The target is created as the source was defined at T (its indexes and TTL then).
    const at = await definitionAt(this.options.log.kafkaClient, admin, entry, status.timeMs);
    if (at.fellBack) {
      this.options.logger.warn("the catalog no longer holds the source's CreateTable", {
        target: status.target,
        source: status.source,
      });
    }
    // Replayed under T's definition too: a TTL attribute set after T must not judge writes
    // replayed from before it.
    const replayEntry = { ...entry, definition: at.definition };
    const scratch = await this.scratch(status, replayEntry, base, cut);
    try {
      await this.load(job, at.definition, scratch.items(), await this.countItems(scratch));
    } finally {
      await scratch.destroy();
    }
  }

  /** The replayed scratch store, built in a worker thread off the node's event loop. */
  private async scratch(
    status: RestoreStatus,
    entry: CatalogEntry,
    base: ReplayBase,
    cut: bigint[],
  ): Promise<ScratchTable> {
    const dir = join(this.root, "work", `${status.target}-${Date.now()}`);
    await mkdir(join(this.root, "work"), { recursive: true });
    const input = {
      dir,
      entry,
      base,
      brokers: this.options.brokers,
      kafkaTls: this.options.kafkaTls,
      cut,
      timeMs: status.timeMs,
    };
    return replayInWorker(input, (replayed) => (status.eventsReplayed = replayed));
  }

  private async countItems(scratch: ScratchTable): Promise<number> {
    let count = 0;
    for await (const _ of scratch.items()) count++;
    return count;
  }

  /**
   * Creates the target (unless an earlier run did), appends every item as a PutItem on its
   * topic, waits until they are applied here (indexes included) and marks it ACTIVE.
   */
  private async load(
    job: Job,
    source: TableDefinition,
    items: AsyncIterable<[Buffer, Buffer]>,
    itemsTotal: number,
  ): Promise<void> {
    const status = job.status;
    status.itemsTotal = itemsTotal;
    const generation = await this.createTarget(job, source);
    job.generation = generation;
    const created = this.options.materializer.table(status.target);
    if (created !== undefined) await this.ensureRetention(created);
    status.state = "RESTORING";
    await this.mark(job);
    status.phase = "LOADING";
    const topic = tableTopic(status.target, generation);
    // Claim every partition for this job's epoch before its first write: from each claim
    // on, the writes of an older job of this restore (one frozen past the takeover period)
    // are dropped at apply time (fence.ts).
    await this.appendFences(job, topic, source.partitions, false);
    await this.appendItems(job, status, source, topic, items);
    // Every write of the job is acknowledged: seal each partition behind them, so no restore
    // write applies there any more (a late one of this or any job), before the table serves.
    this.checkOwner(job);
    await this.appendFences(job, topic, source.partitions, true);
    status.phase = "INDEXING";
    const materializer = this.options.materializer;
    const ends = await this.options.log.endOffsets(topic);
    const waitMs = APPLY_WAIT_MIN_MS + itemsTotal;
    const member = this.options.member;
    if (member === undefined) {
      for (const [p, end] of ends.entries()) await materializer.waitApplied(topic, p, end, waitMs);
    } else {
      // The owners of the target's partitions applied the load and sent its change events;
      // then this node's GSIs (every node applies every changes partition) catch up below.
      await Promise.all(
        ends.map((end, p) => member.waitPublished(status.target, topic, p, end, waitMs)),
      );
    }
    if (source.globalIndexes.length > 0) {
      await materializer.waitGlobalIndexes(status.target, waitMs);
    }
    // The completion record in the catalog first (every node serves the table from there
    // on), then ACTIVE: a kill between the two leaves RESTORING, which is resumed.
    this.checkOwner(job);
    await this.finishInCatalog(job);
    // A heartbeat still in flight lands before ACTIVE; one after it is ignored (fenced()).
    await job.beating;
    // The job reports ACTIVE only once the registry (which gates serving) says so.
    await this.mark(job, {
      state: "ACTIVE",
      generation: String(generation),
      items: itemsTotal,
    });
    status.phase = "DONE";
    status.state = "ACTIVE";
    this.options.logger.info("restore done", { target: status.target, items: itemsTotal });
  }

  /**
   * Appends a RestoreFence of the job's epoch to every partition of the target's topic,
   * acknowledged by all in-sync replicas (a claim, or with `seal`, a seal: fence.ts).
   */
  private async appendFences(
    job: Job,
    topic: string,
    partitions: number,
    seal: boolean,
  ): Promise<void> {
    const event = {
      type: "RestoreFence" as const,
      table: job.status.target,
      epoch: BigInt(job.epoch),
      seal,
    };
    const value = encodeEvent(event);
    const producer = this.options.log.kafkaClient.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      await producer.send({
        topic,
        acks: -1,
        messages: Array.from({ length: partitions }, (_, partition) => ({
          partition,
          key: RESTORE_FENCE_RECORD_KEY,
          value,
        })),
      });
    } finally {
      await producer.disconnect().catch(() => undefined);
    }
  }

  /** Appends the target's FINISH_RESTORE to the catalog, unless it is there already. */
  private async finishInCatalog(job: Job): Promise<void> {
    const materializer = this.options.materializer;
    const entry = materializer.table(job.status.target);
    if (entry === undefined) {
      throw new DbError("NOT_FOUND", `${job.status.target} was deleted while being restored`);
    }
    if (entry.restore === undefined) return;
    const at = await this.options.log.appendCatalog({
      type: "UpdateTable",
      table: entry.definition,
      changes: [{ kind: "FINISH_RESTORE", jobId: job.id }],
    });
    const outcome = await materializer.awaitOutcome(at.topic, at.partition, at.offset, 30_000);
    if (outcome.status !== "OK") {
      const message = outcome.status === "VALIDATION" ? outcome.message : "condition failed";
      throw new DbError("ABORTED", `finishing ${job.status.target}: ${message}`);
    }
  }

  /** The target's generation: created now, or by the earlier run this one resumes. */
  private async createTarget(job: Job, source: TableDefinition): Promise<bigint> {
    const status = job.status;
    const materializer = this.options.materializer;
    const existing = materializer.table(status.target);
    if (existing !== undefined) return existing.generation;
    this.checkOwner(job);
    const [catalogEnd] = await this.options.log.endOffsets(CATALOG_TOPIC);
    job.catalogAfter = String(catalogEnd ?? 0n);
    await this.mark(job, { state: "CREATING" });
    // The CreateTable names the restore (CreateTable v2): every node refuses the table from
    // the moment it learns of it until the FINISH_RESTORE (finishInCatalog).
    const definition = { ...source, name: status.target };
    const at = await this.options.log.appendCatalog({
      type: "CreateTable",
      table: definition,
      restore: { source: status.source, timeMs: BigInt(status.timeMs), jobId: job.id },
    });
    await this.options.log.ensureTopic(tableTopic(status.target, at.offset), source.partitions);
    const outcome = await materializer.awaitOutcome(at.topic, at.partition, at.offset, 30_000);
    if (outcome.status !== "OK") {
      const message = outcome.status === "VALIDATION" ? outcome.message : "condition failed";
      throw new DbError("ALREADY_EXISTS", `creating ${status.target}: ${message}`);
    }
    return at.offset;
  }

  private async appendItems(
    job: Job,
    status: RestoreStatus,
    source: TableDefinition,
    topic: string,
    items: AsyncIterable<[Buffer, Buffer]>,
  ): Promise<void> {
    const log = this.options.log;
    const rate = this.options.restoreItemsPerSecondMax ?? 0;
    const started = Date.now();
    const inFlight = new Set<Promise<unknown>>();
    let failure: unknown = null;
    for await (const [, value] of items) {
      if (failure !== null) break;
      if (job.fenced) throw new DbError("ABORTED", `${status.target} was taken over`);
      const item = decodeStoredItem(value).attributes;
      const partitionKey = item[source.partitionKey.name];
      if (partitionKey === undefined) throw new DbError("CORRUPT_DATA", "item without its key");
      const sent = log
        .appendItemEvent(topic, partitionKey, {
          type: "PutItem",
          table: status.target,
          item,
          condition: null,
          names: {},
          values: {},
          returnValues: "NONE",
          requestId: null,
          restoreEpoch: BigInt(job.epoch),
        })
        .then(
          () => void status.itemsWritten++,
          (error: unknown) => void (failure = error),
        );
      inFlight.add(sent);
      void sent.finally(() => inFlight.delete(sent));
      if (inFlight.size >= ITEMS_IN_FLIGHT_MAX) await Promise.race(inFlight);
      if (rate > 0) {
        const dueMs = ((status.itemsWritten + inFlight.size) * 1000) / rate;
        const aheadMs = dueMs - (Date.now() - started);
        if (aheadMs > 0) await new Promise((resolve) => setTimeout(resolve, aheadMs));
      }
    }
    await Promise.all(inFlight);
    if (failure !== null) throw failure;
  }

  // ---- time-travel reads -----------------------------------------------------------------

  /**
   * The state of one partition key of `table` as of an instant (timeMs) or a token's
   * offset of its partition (cut): a store to run the ordinary read functions on.
   */
  async stateAsOf(
    table: string,
    key: { value: AttributeValue; partition: number },
    at: { timeMs: number } | { offsets: (topic: string, partition: number) => bigint | null },
  ): Promise<{ store: MemoryStore; entry: CatalogEntry; nowMs: bigint }> {
    const entry = this.options.materializer.table(table);
    if (entry === undefined) throw new DbError("NOT_FOUND", `Table not found: ${table}`);
    const { partitions } = entry.definition;
    const topic = tableTopic(table, entry.generation);
    const partition = key.partition;
    const partitionKey = key.value;
    const admin = this.requireAdmin();
    let cut: bigint;
    if ("timeMs" in at) {
      if (at.timeMs > Date.now()) throw new DbError("INVALID_ARGUMENT", "asOf is in the future");
      cut = (await cutOffsets(admin, topic, partitions, at.timeMs))[partition]!;
    } else {
      const offset = at.offsets(topic, partition);
      if (offset === null) {
        throw new DbError("INVALID_ARGUMENT", `the asOf token names no offset of ${table}`);
      }
      cut = offset;
    }
    const logStart = (await logStartOffsets(admin, topic, partitions))[partition]!;
    const store = await stateAsOf(this.options.log.kafkaClient, {
      entry,
      partition,
      partitionKey,
      cut,
      timeMs: "timeMs" in at ? at.timeMs : null,
      logStart,
      checkpoints: await this.checkpointsOf(table),
    });
    const nowMs = BigInt("timeMs" in at ? at.timeMs : Date.now());
    return { store, entry, nowMs };
  }

  /**
   * The whole of `table` as of an instant, global secondary indexes derived, in a scratch
   * store replayed in a worker thread like a restore's (as-of.ts bounds it): the reader to
   * run the ordinary read functions on, and release() to delete it.
   */
  async tableStateAsOf(
    table: string,
    timeMs: number,
  ): Promise<{
    reader: KvReader;
    entry: CatalogEntry;
    nowMs: bigint;
    release: () => Promise<void>;
  }> {
    const entry = this.options.materializer.table(table);
    if (entry === undefined) throw new DbError("NOT_FOUND", `Table not found: ${table}`);
    if (timeMs > Date.now()) throw new DbError("INVALID_ARGUMENT", "asOf is in the future");
    const { partitions } = entry.definition;
    const topic = tableTopic(table, entry.generation);
    const admin = this.requireAdmin();
    const cut = await cutOffsets(admin, topic, partitions, timeMs);
    // The cut fixes the state exactly (with the generation and the instant, which judges TTL
    // and stops the replay): a page of the same read, or another read of the same instant,
    // reuses it while it is kept (as-of-cache.ts).
    // The bounds hold for every read, kept state or not (as-of.ts): what a rebuild would cost.
    const base = tableAsOfBase({
      entry,
      cut,
      logStart: await logStartOffsets(admin, topic, partitions),
      checkpoints: await this.checkpointsOf(table),
    });
    const key = [table, entry.generation, timeMs, cut.join(",")].join("\u0000");
    const { value, release } = await this.asOfStates.acquire(key, () =>
      this.buildTableStateAsOf(entry, base, cut, timeMs),
    );
    try {
      checkTableItems(value.items);
    } catch (error) {
      await release();
      throw error;
    }
    return { reader: value.reader, entry: value.entry, nowMs: BigInt(timeMs), release };
  }

  private async buildTableStateAsOf(
    entry: CatalogEntry,
    base: ReplayBase,
    cut: bigint[],
    timeMs: number,
  ) {
    const table = entry.definition.name;
    await mkdir(join(this.root, "work"), { recursive: true });
    const input = {
      dir: join(this.root, "work", `asof-${table}-${randomUUID()}`),
      entry,
      base,
      brokers: this.options.brokers,
      kafkaTls: this.options.kafkaTls,
      cut,
      timeMs,
    };
    const scratch = await replayInWorker(input, () => undefined);
    let items: number;
    try {
      items = await deriveGlobalIndexes(scratch.kv, entry);
    } catch (error) {
      await scratch.destroy();
      throw error;
    }
    const value = { reader: scratch.kv as KvReader, entry, items };
    return { value, dir: input.dir, destroy: () => scratch.destroy() };
  }

  // ---- checkpoints and backups -----------------------------------------------------------

  private async checkpointsOf(table: string): Promise<StoredCheckpoint[]> {
    const all = [
      ...(await listTableCheckpoints(join(this.checkpointsRoot, table))),
      ...(await listTableCheckpoints(this.backupsRoot)),
    ];
    return all.filter((c) => c.manifest.table === table);
  }

  /**
   * Deletes the checkpoints of tables that no longer exist, or exist under a newer
   * generation (dropped and created again): a restore's source is always a table's current
   * generation, so they can never be a restore base again. Backups are the user's and stay.
   * Runs once the catalog is applied to its end, so a table is not taken for dropped
   * because this node has not heard of it yet. The checkpoint folders deleted.
   */
  async pruneDropped(): Promise<string[]> {
    const [catalogEnd] = await this.options.log.endOffsets(CATALOG_TOPIC);
    await this.options.materializer.waitApplied(
      CATALOG_TOPIC,
      0,
      catalogEnd ?? 0n,
      APPLY_WAIT_MIN_MS,
    );
    const deleted: string[] = [];
    const tables = await readdir(this.checkpointsRoot).catch(() => [] as string[]);
    for (const table of tables) {
      const root = join(this.checkpointsRoot, table);
      const current = this.options.materializer.table(table)?.generation.toString();
      for (const checkpoint of await listTableCheckpoints(root)) {
        if (checkpoint.manifest.generation === current) continue;
        await rm(checkpoint.dir, { recursive: true, force: true });
        deleted.push(checkpoint.dir);
      }
      if (current === undefined) {
        await removeInterrupted(root);
        // Only once empty: something unknown in it is left for a person to look at.
        const left = await readdir(root).catch(() => [] as string[]);
        if (left.length === 0) await rm(root, { recursive: true, force: true });
      }
    }
    if (deleted.length > 0) {
      this.options.logger.info("pruned checkpoints of dropped tables", { count: deleted.length });
    }
    return deleted;
  }

  /**
   * Writes a checkpoint of every table that moved since its last one; prunes old ones. Runs
   * one at a time (the timer's and any caller's): a run removes the interrupted writes it
   * finds, which would otherwise include another run's checkpoint still being written.
   */
  checkpointAll(nowMs = Date.now()): Promise<TableCheckpointManifest[]> {
    const run = this.checkpointing.catch(() => undefined).then(() => this.writeCheckpoints(nowMs));
    this.checkpointing = run.catch(() => undefined);
    return run;
  }

  private async writeCheckpoints(nowMs: number): Promise<TableCheckpointManifest[]> {
    await this.ensureRetentionAll();
    await this.pruneDropped().catch((error: unknown) =>
      this.options.logger.warn("could not prune checkpoints of dropped tables", { error }),
    );
    const written: TableCheckpointManifest[] = [];
    for (const entry of this.options.materializer.applier.tables()) {
      const name = entry.definition.name;
      const topic = tableTopic(name, entry.generation);
      const offsets = Array.from({ length: entry.definition.partitions }, (_, p) =>
        this.options.materializer.appliedOffset(topic, p),
      ).join(",");
      if (this.lastCheckpoint.get(topic) === offsets) continue;
      const root = join(this.checkpointsRoot, name);
      await removeInterrupted(root);
      const manifest = await writeTableCheckpoint(
        this.options.materializer.store,
        entry,
        join(root, `${nowMs}-${entry.generation}`),
        { kind: "checkpoint", name: String(nowMs), createdAtMs: nowMs },
      );
      this.lastCheckpoint.set(topic, manifest.offsets.join(","));
      written.push(manifest);
      await this.prune(root, name, nowMs);
    }
    return written;
  }

  /**
   * Deletes checkpoints no restore in the window needs, and thins the older ones inside it
   * (checkpointsToDelete): each is a full copy of the table, and one per interval for a
   * 35-day window would be 840 copies.
   */
  private async prune(root: string, table: string, nowMs: number): Promise<void> {
    const all = await listTableCheckpoints(root);
    const doomed = checkpointsToDelete(
      all.map((c) => c.manifest.createdAtMs),
      { nowMs, windowMs: this.windowMs(table), recentKept: 24, spacingMs: DAY_MS },
    );
    for (const i of doomed) await rm(all[i]!.dir, { recursive: true, force: true });
  }

  /** The S3 client of s3:// locations, made on first use. */
  private get s3(): S3Backups {
    this.s3Client ??= new S3Backups(this.options.s3);
    return this.s3Client;
  }

  /**
   * An on-demand backup of a table into DATA/restore/backups/<name>, or `dir`, or under an
   * s3://bucket/prefix location (written locally first, then uploaded: the store snapshot
   * is held only for the local write).
   */
  async backupTable(table: string, name: string, to?: string): Promise<TableCheckpointManifest> {
    const entry = this.options.materializer.table(table);
    if (entry === undefined) throw new DbError("NOT_FOUND", `Table not found: ${table}`);
    if (!/^[A-Za-z0-9._-]{1,200}$/.test(name) || name.startsWith(".")) {
      throw new DbError("INVALID_ARGUMENT", "a backup name is 1..200 of [A-Za-z0-9._-]");
    }
    const meta = { kind: "backup" as const, name, createdAtMs: Date.now() };
    if (to === undefined || !isS3Url(to)) {
      const manifest = await this.writeBackup(entry, to ?? join(this.backupsRoot, name), meta);
      if (to === undefined) await this.recordBackup(manifest, false);
      return manifest;
    }
    const location = parseS3Url(to);
    const staging = join(this.root, "work", `upload-${randomUUID()}`);
    try {
      await this.writeBackup(entry, join(staging, name), meta);
      return await this.s3.upload(join(staging, name), location, name);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /** The name this node's directory backups are recorded under. */
  get backupNode(): string {
    return this.options.nodeName ?? this.nodeId;
  }

  /**
   * Records a folder backup written (or deleted) in logkv.restores, with the node whose
   * folder holds it, so every node lists it. A failure to record is logged: the backup
   * itself is done (or gone), and its node lists it from its folder anyway. S3 backups are
   * not recorded: any node lists them from their location and restores them.
   */
  private async recordBackup(manifest: TableCheckpointManifest, deleted: boolean): Promise<void> {
    const backup: BackupRecord = {
      name: manifest.name,
      table: manifest.table,
      generation: manifest.generation,
      createdAtMs: manifest.createdAtMs,
      items: manifest.items,
      bytes: manifest.bytes,
      offsets: manifest.offsets,
      node: this.backupNode,
      ...(deleted && { deleted: true }),
    };
    await this.requireRegistry()
      .record({
        kind: "backup",
        target: `backup:node:${this.backupNode}:${manifest.name}`,
        source: manifest.table,
        timeMs: manifest.createdAtMs,
        state: "ACTIVE",
        backup,
      })
      .catch((error: unknown) =>
        this.options.logger.warn("could not record the backup in the log", {
          backup: manifest.name,
          error,
        }),
      );
  }

  /**
   * Writes a backup of the table into `dir`: from one snapshot of the node's store, or, on
   * a replica-set member (which holds only its own partitions), from a scratch store
   * replayed like a restore's up to every partition's end offset when the backup was asked
   * for: the newest checkpoint or backup below those ends, then the log. Either way each
   * partition is at a recorded offset and the items are the table's state there.
   */
  private async writeBackup(
    entry: CatalogEntry,
    dir: string,
    meta: { kind: "backup"; name: string; createdAtMs: number },
  ): Promise<TableCheckpointManifest> {
    if (this.options.member === undefined) {
      return writeTableCheckpoint(this.options.materializer.store, entry, dir, meta);
    }
    const { name: table, partitions } = entry.definition;
    const topic = tableTopic(table, entry.generation);
    const admin = this.requireAdmin();
    const cut = await this.options.log.endOffsets(topic);
    const start = await logStartOffsets(admin, topic, partitions);
    const base = chooseBase(await this.checkpointsOf(table), entry.generation, cut, start);
    if (base === null) {
      throw new DbError("OFFSET_OUT_OF_RANGE", "no checkpoint and log reach back that far");
    }
    await mkdir(join(this.root, "work"), { recursive: true });
    const scratch = await replayInWorker(
      {
        dir: join(this.root, "work", `backup-${table}-${randomUUID()}`),
        entry,
        base,
        brokers: this.options.brokers,
        kafkaTls: this.options.kafkaTls,
        cut,
        // Every record below the ends, whatever its timestamp (gateways' clocks differ).
        timeMs: Number.MAX_SAFE_INTEGER,
      },
      () => undefined,
    );
    try {
      return await writeTableCheckpoint(scratch.kv, entry, dir, meta);
    } finally {
      await scratch.destroy();
    }
  }

  /**
   * The backups of an s3://bucket/prefix location; without one, every folder backup: this
   * node's, then those the log records in other nodes' folders (which this node cannot
   * restore: `available` false).
   */
  async listBackups(location?: string): Promise<BackupInfo[]> {
    const info = (
      m: TableCheckpointManifest | BackupRecord,
      where: { location: string | null; node: string | null; available: boolean },
    ): BackupInfo => {
      const { definition: _, ...rest } = m as TableCheckpointManifest;
      return { ...(rest as Omit<TableCheckpointManifest, "definition">), ...where };
    };
    if (location !== undefined && isS3Url(location)) {
      const at = s3Url(parseS3Url(location));
      const listed = await this.s3.list(parseS3Url(location));
      return listed.map((m) => info(m, { location: at, node: null, available: true }));
    }
    if (location !== undefined) throw new DbError("INVALID_ARGUMENT", "a location is s3://...");
    const own = (await listTableCheckpoints(this.backupsRoot)).map((c) =>
      info(c.manifest, { location: null, node: this.backupNode, available: true }),
    );
    const elsewhere: BackupInfo[] = [];
    for (const b of this.registry?.backups() ?? []) {
      // This node's folder is the truth about this node's backups.
      if (b.location !== undefined || b.node === undefined || b.node === this.backupNode) continue;
      const recorded: Omit<TableCheckpointManifest, "definition"> = {
        format: 1,
        kind: "backup",
        name: b.name,
        table: b.table,
        generation: b.generation,
        topic: tableTopic(b.table, BigInt(b.generation)),
        offsets: b.offsets,
        createdAtMs: b.createdAtMs,
        items: b.items,
        bytes: b.bytes,
        sha256: "",
      };
      elsewhere.push(info(recorded, { location: null, node: b.node, available: false }));
    }
    return [...own, ...elsewhere];
  }

  async deleteBackup(name: string, location?: string): Promise<TableCheckpointManifest> {
    if (name === "" || name.includes("/") || name.startsWith(".")) {
      throw new DbError("INVALID_ARGUMENT", `no backup named ${name}`);
    }
    if (location !== undefined && isS3Url(location)) {
      return this.s3.delete(parseS3Url(location), name);
    }
    if (location !== undefined) throw new DbError("INVALID_ARGUMENT", "a location is s3://...");
    const dir = join(this.backupsRoot, name);
    const manifest = await readTableCheckpoint(dir).catch((error: unknown) => {
      throw this.elsewhere(name) ?? error;
    });
    await rm(dir, { recursive: true, force: true });
    await this.recordBackup(manifest, true);
    return manifest;
  }

  /** The error for a backup not in this node's folder that the log places on another node. */
  private elsewhere(name: string): BackupUnavailableError | null {
    const other = this.registry
      ?.backups()
      .find((b) => b.name === name && b.location === undefined && b.node !== this.backupNode);
    return other === undefined ? null : new BackupUnavailableError(name, other.node ?? "?", false);
  }

  /**
   * Restores a backup (of this node's backups folder, any directory, or an s3:// location)
   * into a new table. An S3 backup is streamed to a local work folder first.
   */
  async restoreBackup(request: {
    backup: string;
    target: string;
    dir?: string;
    location?: string;
  }): Promise<RestoreStatus> {
    const { backup, target, location } = request;
    if (backup === "" || backup.includes("/") || backup.startsWith(".")) {
      throw new DbError("INVALID_ARGUMENT", `no backup named ${backup}`);
    }
    const s3 = location !== undefined && isS3Url(location) ? parseS3Url(location) : null;
    if (location !== undefined && s3 === null) {
      throw new DbError("INVALID_ARGUMENT", "a location is s3://...");
    }
    const localDir = request.dir ?? join(this.backupsRoot, backup);
    const manifest =
      s3 === null
        ? await readTableCheckpoint(localDir).catch((error: unknown) => {
            throw (request.dir === undefined ? this.elsewhere(backup) : null) ?? error;
          })
        : await this.s3.manifest(s3, backup);
    const source = s3 === null ? `backup:${manifest.name}` : `backup:${s3Url(s3)}/${backup}`;
    const running = this.sameRunning(target, source, manifest.createdAtMs);
    if (running !== null) return running;
    validateTableDefinition({ ...manifest.definition, name: target });
    this.checkTarget(target, source, manifest.createdAtMs);
    return this.launch(target, source, manifest.createdAtMs, async (job) => {
      const dir = s3 === null ? localDir : join(this.root, "work", `download-${job.id}`);
      try {
        if (s3 !== null) {
          job.status.phase = "DOWNLOADING";
          const fetched = await this.s3.download(s3, backup, dir);
          if (fetched.sha256 !== manifest.sha256) {
            throw new DbError("ABORTED", `${source} was replaced while being restored`);
          }
        }
        const entry = { definition: manifest.definition, generation: BigInt(manifest.generation) };
        const base = { checkpoint: { dir, manifest }, offsets: manifest.offsets.map(BigInt) };
        job.status.phase = "REPLAYING";
        const scratch = await this.scratch(job.status, entry, base, base.offsets);
        try {
          job.status.checkpoint = manifest.name;
          const items = await this.countItems(scratch);
          await this.load(job, manifest.definition, scratch.items(), items);
        } finally {
          await scratch.destroy();
        }
      } finally {
        if (s3 !== null) await rm(dir, { recursive: true, force: true });
      }
    });
  }

  private requireAdmin(): Admin {
    if (this.admin === null) throw new DbError("INTERNAL", "restore service not started");
    return this.admin;
  }

  private requireRegistry(): RestoreRegistry {
    if (this.registry === null) throw new DbError("INTERNAL", "restore service not started");
    return this.registry;
  }

  async stop(): Promise<void> {
    // A job cut short by this stop records no FAILED: it is resumed at the next start.
    this.stopping = true;
    if (this.timer !== null) clearInterval(this.timer);
    if (this.watcher !== null) clearInterval(this.watcher);
    await this.checkpointing;
    await this.asOfStates.clear();
    await this.admin?.disconnect().catch(() => undefined);
    await this.registry?.close();
    this.s3Client?.close();
  }

  /** Checkpoint folders of a table (tests and the CLI). */
  async checkpointNames(table: string): Promise<string[]> {
    return readdir(join(this.checkpointsRoot, table)).catch(() => []);
  }
}

function recordOf(job: Job): Omit<RestoreRecord, "format" | "atMs"> {
  const status = job.status;
  return {
    target: status.target,
    source: status.source,
    timeMs: status.timeMs,
    state: status.state,
    jobId: job.id,
    owner: job.owner,
    epoch: job.epoch,
    ...(job.generation !== null && { generation: String(job.generation) }),
    ...(job.catalogAfter !== null && { catalogAfter: job.catalogAfter }),
    eventsReplayed: status.eventsReplayed.toString(),
    checkpoint: status.checkpoint,
  };
}

function statusOfRecord(record: RestoreRecord): RestoreStatus {
  return {
    target: record.target,
    source: record.source,
    timeMs: record.timeMs,
    state: record.state,
    phase: record.state === "ACTIVE" ? "DONE" : null,
    eventsReplayed: BigInt(record.eventsReplayed ?? "0"),
    eventsTotal: BigInt(record.eventsReplayed ?? "0"),
    itemsWritten: record.items ?? 0,
    itemsTotal: record.items ?? 0,
    checkpoint: record.checkpoint ?? null,
    message: record.message ?? null,
    running: false,
  };
}
