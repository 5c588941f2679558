// The restore registry: the state of every restore, kept in the log (control topic
// `logkv.restores`, one partition, key = target table, last record wins), so every node
// refuses a table whose restore is not finished, also after a crash (README.md, "Status
// and crash safety").
//
// Lifecycle: open() reads the topic to its end before returning (a node never serves a
// half-restored table it has not heard of yet), then tails it; record() appends with
// acks=-1 and resolves once the tail has folded it (records are folded strictly in log
// order, which is what makes the owner-epoch fence the same on every node); close() stops
// the consumer and producer.
import { randomUUID } from "node:crypto";
import type { Consumer, Kafka, Producer } from "kafkajs";
import { DbError } from "../../services/shared/errors.js";

export const RESTORES_TOPIC = "logkv.restores";
const RECORD_FORMAT = 1;
const OPEN_TIMEOUT_MS = 30_000;

export type RestoreState = "CREATING" | "RESTORING" | "ACTIVE" | "FAILED";

/**
 * A backup as recorded in the log (kind "backup"): where it lives, so every node lists every
 * backup, also one on the disk of a node that is not running (README.md "Backups in the
 * log"). The manifest without its definition.
 */
export interface BackupRecord {
  name: string;
  table: string;
  generation: string;
  createdAtMs: number;
  items: number;
  bytes: number;
  offsets: string[];
  /** s3://bucket/prefix for a backup on S3 (not recorded yet); absent: a folder on `node`. */
  location?: string;
  /** The node (its --node-id, or its restore node id) whose folder holds the backup. */
  node?: string;
  /** Set by deleteBackup: the backup is gone. */
  deleted?: boolean;
}

export interface RestoreRecord {
  format: number;
  /**
   * "window": a table's recovery window (windowMs); "backup": a backup written or deleted
   * (`backup`, keyed `backup:<where>:<name>` in `target`); absent: a restore.
   */
  kind?: "window" | "backup";
  windowMs?: number;
  backup?: BackupRecord;
  target: string;
  /** Source table, or the backup the target is restored from ("backup:<name>"). */
  source: string;
  /** The instant restored (epoch ms); a backup's is its creation time. */
  timeMs: number;
  state: RestoreState;
  /** The target's generation once its CreateTable is applied. */
  generation?: string;
  /** The job that wrote the record (a node's restore run). */
  jobId?: string;
  /** The node that runs the job (its DATA/restore/node-id): it resumes it after a crash. */
  owner?: string;
  /**
   * The owner epoch: a job's records carry the epoch it claimed (1 + the epoch before it),
   * and a record with a lower epoch, or the same epoch from another job, is ignored by
   * every node (foldRecord): the fence of takeovers. Absent (0): records of older nodes.
   */
  epoch?: number;
  /** Catalog end offset before the target's CreateTable: its generation is at least this. */
  catalogAfter?: string;
  items?: number;
  eventsReplayed?: string;
  /** Which checkpoint the replay started from (its directory name), if any. */
  checkpoint?: string | null;
  message?: string;
  atMs: number;
}

export class RestoreRegistry {
  private readonly records = new Map<
    string,
    { offset: bigint; record: RestoreRecord; seenAtMs: number }
  >();
  private readonly windows = new Map<string, { offset: bigint; windowMs: number }>();
  private readonly backupRecords = new Map<string, { offset: bigint; backup: BackupRecord }>();
  /** The next offset the tail will fold, and who waits for their record to be folded. */
  private next = 0n;
  private readonly waiters: { offset: bigint; resolve: () => void }[] = [];

  private constructor(
    private readonly consumer: Consumer,
    private readonly producer: Producer,
  ) {}

  static async open(kafka: Kafka): Promise<RestoreRegistry> {
    const admin = kafka.admin();
    await admin.connect();
    let high: bigint;
    try {
      await admin.createTopics({
        topics: [{ topic: RESTORES_TOPIC, numPartitions: 1 }],
        waitForLeaders: true,
      });
      const ends = await admin.fetchTopicOffsets(RESTORES_TOPIC);
      high = BigInt(ends[0]?.high ?? "0");
    } finally {
      await admin.disconnect();
    }
    const producer = kafka.producer({
      allowAutoTopicCreation: false,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    const consumer = kafka.consumer({
      allowAutoTopicCreation: false,
      groupId: `logkv-restores.${randomUUID()}`,
      maxWaitTimeInMs: 100,
    });
    await Promise.all([producer.connect(), consumer.connect()]);
    const registry = new RestoreRegistry(consumer, producer);
    await registry.follow(high);
    return registry;
  }

  /** Tails the topic; resolves once everything below `high` is folded in. */
  private async follow(high: bigint): Promise<void> {
    let caughtUp: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (caughtUp = resolve));
    if (high === 0n) caughtUp();
    await this.consumer.subscribe({ topic: RESTORES_TOPIC, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        const offset = BigInt(message.offset);
        if (offset < this.next) return;
        this.next = offset + 1n;
        if (message.value !== null) this.fold(offset, parseRecord(message.value));
        if (this.next >= high) caughtUp();
        this.wake();
      },
    });
    this.consumer.seek({ topic: RESTORES_TOPIC, partition: 0, offset: "0" });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new DbError("TIMEOUT", `${RESTORES_TOPIC} not read to its end`)),
        OPEN_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([ready, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private fold(offset: bigint, record: RestoreRecord | null): void {
    if (record === null) return;
    if (record.kind === "window") {
      const known = this.windows.get(record.target);
      if (known !== undefined && known.offset >= offset) return;
      if (typeof record.windowMs === "number") {
        this.windows.set(record.target, { offset, windowMs: record.windowMs });
      }
      return;
    }
    if (record.kind === "backup") {
      const known = this.backupRecords.get(record.target);
      if (known !== undefined && known.offset >= offset) return;
      if (record.backup !== undefined && typeof record.backup.name === "string") {
        this.backupRecords.set(record.target, { offset, backup: record.backup });
      }
      return;
    }
    const known = this.records.get(record.target);
    if (known !== undefined && known.offset >= offset) return;
    const folded = foldRecord(known?.record, record);
    if (known !== undefined && folded === known.record) return; // fenced: ignored
    this.records.set(record.target, { offset, record: folded, seenAtMs: Date.now() });
  }

  private wake(): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const waiter = this.waiters[i]!;
      if (waiter.offset < this.next) {
        this.waiters.splice(i, 1);
        waiter.resolve();
      }
    }
  }

  /** Resolves once the tail has folded every record up to `offset`, in log order. */
  private async folded(offset: bigint): Promise<void> {
    if (offset < this.next) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        new Promise<void>((resolve) => this.waiters.push({ offset, resolve })),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new DbError("TIMEOUT", `${RESTORES_TOPIC} not read up to ${offset}`)),
            OPEN_TIMEOUT_MS,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Appends a record durably and resolves once the tail has folded it, with every record
   * before it, in log order: then get(target) says whether it stands or was fenced (a
   * record of a lower epoch, or of another job with the same epoch, is ignored everywhere).
   */
  async record(record: Omit<RestoreRecord, "format" | "atMs">): Promise<RestoreRecord> {
    const full: RestoreRecord = { format: RECORD_FORMAT, ...record, atMs: Date.now() };
    const [meta] = await this.producer.send({
      topic: RESTORES_TOPIC,
      acks: -1,
      messages: [
        {
          key: record.kind === "window" ? `window:${record.target}` : record.target,
          value: JSON.stringify(full),
        },
      ],
    });
    const offset = BigInt(meta?.baseOffset ?? "-1");
    await this.folded(offset);
    return full;
  }

  /** How long ago (this node's clock) the target's last standing record was read. */
  silentForMs(target: string, nowMs = Date.now()): number {
    const known = this.records.get(target);
    return known === undefined ? 0 : nowMs - known.seenAtMs;
  }

  /** Every backup recorded in the log and not deleted since, in the order first written. */
  backups(): BackupRecord[] {
    return [...this.backupRecords.values()].map((r) => r.backup).filter((b) => b.deleted !== true);
  }

  /** A table's recovery window, if one was set for it. */
  window(table: string): number | undefined {
    return this.windows.get(table)?.windowMs;
  }

  get(target: string): RestoreRecord | undefined {
    return this.records.get(target)?.record;
  }

  all(): RestoreRecord[] {
    return [...this.records.values()].map((r) => r.record);
  }

  /**
   * Whether a table of that name and generation may be served: false while a restore into
   * it is unfinished (CREATING, RESTORING, FAILED).
   */
  servable(name: string, generation: bigint): boolean {
    return servableBy(this.records.get(name)?.record, generation);
  }

  async close(): Promise<void> {
    await Promise.all([
      this.consumer.disconnect().catch(() => undefined),
      this.producer.disconnect().catch(() => undefined),
    ]);
  }
}

/**
 * The record that stands after `incoming` follows `known` for the same target. A CREATING
 * record (a restore starting, maybe on another node) keeps the generation an unfinished
 * restore already created, so that partial table stays refused. Pure.
 */
export function foldRecord(
  known: RestoreRecord | undefined,
  incoming: RestoreRecord,
): RestoreRecord {
  if (known !== undefined && fenced(known, incoming)) return known;
  const unfinished = known !== undefined && known.state !== "ACTIVE";
  const inherits = incoming.generation === undefined && incoming.state === "CREATING";
  return unfinished && inherits ? { ...incoming, generation: known.generation } : incoming;
}

/**
 * Whether `incoming` is ignored after `known` (same target): a lower owner epoch (a job
 * another node has taken over), the same epoch from another job (the loser of a race to
 * claim it), or the same job going back from ACTIVE or FAILED (a heartbeat that was in
 * flight when the job ended). Records of older nodes (no epoch) are never fenced. Pure.
 */
export function fenced(known: RestoreRecord, incoming: RestoreRecord): boolean {
  const was = known.epoch ?? 0;
  const now = incoming.epoch ?? 0;
  if (now === 0) return false;
  if (now < was) return true;
  if (now > was) return false;
  if (incoming.jobId !== known.jobId) return true;
  const ended = known.state === "ACTIVE" || known.state === "FAILED";
  return ended && incoming.state !== known.state;
}

/** Whether a table of that generation may be served under the target's last record. Pure. */
export function servableBy(record: RestoreRecord | undefined, generation: bigint): boolean {
  if (record === undefined || record.state === "ACTIVE") return true;
  if (record.generation !== undefined && BigInt(record.generation) === generation) return false;
  // CREATING before the generation is known: any table created since may be the target.
  const after = record.state === "CREATING" ? record.catalogAfter : undefined;
  return after === undefined || generation < BigInt(after);
}

function parseRecord(bytes: Buffer): RestoreRecord | null {
  try {
    const record = JSON.parse(bytes.toString("utf8")) as RestoreRecord;
    return record.format === RECORD_FORMAT && typeof record.target === "string" ? record : null;
  } catch {
    return null; // Not ours: a foreign writer on the control topic is ignored, not fatal.
  }
}
