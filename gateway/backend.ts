// What the gateway reads through: a GatewayBackend. A gateway with a store serves it from
// its in-process Materializer (localBackend below); a stateless gateway from the
// materializers that own each partition, over the internal RPC (gateway/remote/).
//
// A read may carry a ReadFence: the offsets it must reflect per partition, and whether the
// table's global indexes must have caught up first. The local backend's consistency gate
// has already waited for the floor in-process, so it only honours `globalIndexes`; the
// remote backend sends the fence with the read so that the owner that serves the read is
// the one that waits (a wait at one owner says nothing of another's applied offset).
import type { Materializer } from "../materializer/materializer.js";
import type { ChangeStream, ChangeStreamOptions } from "../materializer/consume/change-stream.js";
import type {
  GetItemOptions,
  QueryOptions,
  ReadPage,
  ScanOptions,
} from "../materializer/read/index.js";
import type { CatalogEntry } from "../materializer/state/records.js";
import type { Outcome } from "../schemas/records.js";
import type { Item } from "../materializer/values/attribute-value.js";
import type { TxnParticipants } from "../services/transactions/coordinator.js";
import type { RestoreApi } from "../materializer/rpc/restore-api.js";

/** What a subscription reads: a ChangeStream, or a remote one (gateway/remote/). */
export type ChangeCursor = Pick<ChangeStream, "next" | "return" | "positions">;

export interface ChangeCursorOptions extends ChangeStreamOptions {
  /** The partitions the subscription follows (a remote stream polls only these). */
  partitions?: readonly number[];
}

export interface ReadFence {
  /** The table partitions the read spans (the key's, or all of them for scans and GSIs). */
  partitions?: readonly number[];
  /** Partition -> every offset below this must be applied where the read runs. */
  floor?: ReadonlyMap<number, bigint>;
  /** Wait until the table's global indexes reflect every applied change (GSI reads). */
  globalIndexes?: boolean;
  /** How long the read may wait for the fence, in all. */
  timeoutMs: number;
}

export interface ReadAnswer<T> {
  result: T;
  topic: string;
  /** Per partition of the table, the applied offset the read reflects at least. */
  offsets: bigint[];
}

type NoNow<T> = Omit<T, "nowMs">;

export interface GatewayBackend {
  /** True when reads go to remote owners (the gate leaves table-topic waits to them). */
  readonly remote: boolean;
  table(name: string): CatalogEntry | undefined;
  tables(): CatalogEntry[];
  appliedOffset(topic: string, partition: number): bigint;
  waitApplied(topic: string, partition: number, offset: bigint, timeoutMs: number): Promise<void>;
  awaitOutcome(
    topic: string,
    partition: number,
    offset: bigint,
    timeoutMs: number,
  ): Promise<Outcome>;
  getItem(
    table: string,
    key: Item,
    options: NoNow<GetItemOptions>,
    fence?: ReadFence,
  ): Promise<ReadAnswer<{ item: Item | null }>>;
  query(
    table: string,
    options: NoNow<QueryOptions>,
    fence?: ReadFence,
  ): Promise<ReadAnswer<ReadPage>>;
  scan(
    table: string,
    options: NoNow<ScanOptions>,
    fence?: ReadFence,
  ): Promise<ReadAnswer<ReadPage>>;
  changes(table: string, options?: ChangeCursorOptions): ChangeCursor;
  /** Where a transaction coordinator reads votes (absent: the in-process materializer). */
  readonly participants?: TxnParticipants;
  /**
   * A table was not in the catalog: a backend whose catalog is a copy brings it up to date
   * before the gateway answers NOT_FOUND (absent: the catalog is the materializer's own).
   */
  catalogMiss?(name: string): Promise<void>;
  /**
   * Restores, backups and time travel when the gateway runs no RestoreService itself (a
   * stateless gateway forwards them to a materializer running one: gateway/remote/).
   */
  readonly restoreApi?: RestoreApi;
}

/** The in-process materializer as a backend: the gate waits in-process before each read. */
export function localBackend(materializer: Materializer): GatewayBackend {
  const indexes = async (table: string, fence: ReadFence | undefined) => {
    if (fence?.globalIndexes === true) await materializer.waitGlobalIndexes(table, fence.timeoutMs);
  };
  return {
    remote: false,
    table: (name) => materializer.table(name),
    tables: () => materializer.applier.tables(),
    appliedOffset: (topic, partition) => materializer.appliedOffset(topic, partition),
    waitApplied: (topic, partition, offset, timeoutMs) =>
      materializer.waitApplied(topic, partition, offset, timeoutMs),
    awaitOutcome: (topic, partition, offset, timeoutMs) =>
      materializer.awaitOutcome(topic, partition, offset, timeoutMs),
    async getItem(table, key, options, fence) {
      await indexes(table, fence);
      return materializer.getItem(table, key, options);
    },
    async query(table, options, fence) {
      await indexes(table, fence);
      return materializer.query(table, options);
    },
    async scan(table, options, fence) {
      await indexes(table, fence);
      return materializer.scan(table, options);
    },
    changes: (table, options) => materializer.changes(table, options),
  };
}
