// A scan of one base partition (RPC `scanPartition`), the unit a stateless gateway fans a
// base-table or LSI scan out into when a replica set's members split the table's partitions
// (gateway/remote/README.md "Scans and GSI queries").
//
// The store orders a table's entries by a hash of the partition key (store/layout.ts), not
// by Kafka partition, so a partition's items are spread over the whole range. The scan
// walks the range (or the parallel-scan segment) through a reader that hides every entry of
// another partition: Limit, the page caps, ScannedCount, cursors and LastEvaluatedKey then
// mean what they mean for a table that held only this partition's items. Entries of
// partitions the node does not own (a prefix kept from an earlier ownership) are hidden
// with the rest, so they are never served.
//
// The answer also carries `last`: the key of the last entry the page evaluated when the page
// ends the partition (cursor null), so the gateway can report a LastEvaluatedKey when it
// stops at a partition boundary.
//
// Cost: each page walks the entries of the other partitions between its own (about N - 1
// per item for N evenly filled partitions); hidden entries are decoded, not counted.
import type { Materializer } from "../materializer.js";
import { partitionOf } from "../../gateway/consistency/partition.js";
import { scan, type ReadPage, type ScanOptions } from "../read/index.js";
import { decodeEntryKey, resolveTarget } from "../read/target.js";
import type { KvReader } from "../store/store.js";
import type { Item } from "../values/attribute-value.js";
import { DbError } from "../../services/shared/errors.js";
import type { TableRead } from "./protocol.js";

export interface PartitionPage extends ReadPage {
  /** The last entry evaluated when the page ends the partition (cursor null); else null. */
  last: Item | null;
}

export function scanPartition(m: Materializer, request: TableRead) {
  const partition = request.partitions[0];
  if (partition === undefined) throw new DbError("INVALID_ARGUMENT", "scanPartition: partition");
  const options = request.options as Omit<ScanOptions, "nowMs">;
  return m.read(
    request.table,
    async (reader, definition): Promise<PartitionPage> => {
      if (partition >= definition.partitions)
        throw new DbError("INVALID_ARGUMENT", `no partition ${partition} in ${request.table}`);
      const target = resolveTarget(definition, options.index);
      if (target.kind === "gsi")
        throw new DbError("INVALID_ARGUMENT", "a global index scan is not split by partition");
      const pkName = definition.partitionKey.name;
      const seen: { last: Buffer | undefined } = { last: undefined };
      const inPartition = (key: Buffer) => {
        const pk = decodeEntryKey(target, key).item[pkName];
        return pk !== undefined && partitionOf(pk, definition.partitions) === partition;
      };
      const only: KvReader = {
        get: (key) => reader.get(key),
        getMany: (keys) => reader.getMany(keys),
        async *iterate(bounds) {
          for await (const entry of reader.iterate(bounds)) {
            if (!inPartition(entry[0])) continue;
            seen.last = entry[0];
            yield entry;
          }
        },
      };
      const page = await scan(only, definition, { ...options, nowMs: BigInt(Date.now()) });
      const last = page.cursor === null ? seen.last : undefined;
      return { ...page, last: last === undefined ? null : decodeEntryKey(target, last).item };
    },
    () => [partition],
  );
}
