// The definition a table had at an instant (README.md, "The target's definition"): its
// CreateTable (at the catalog offset that is its generation) and the UpdateTables of it
// the catalog holds below the instant's cut, each kept only if apply would have accepted
// it (the same validateTableUpdate), so a refused update never shows. A restore creates its
// target with it: global indexes added after T are not on the target, those removed after
// T are, and the TTL attribute is the one in force at T.
import type { Admin, Kafka } from "kafkajs";
import { decodeEvent, type LogEvent, type TableDefinition } from "../../schemas/events.js";
import { DbError } from "../../services/shared/errors.js";
import { validateTableUpdate } from "../catalog/table.js";
import { CATALOG_TOPIC, type CatalogEntry } from "../state/records.js";
import { consumeRange } from "./replay.js";
import { cutOffsets, logStartOffsets } from "./time-offsets.js";

/**
 * Folds catalog events (offset order, from the table's generation on, below the cut) into
 * the table's definition; null when the CreateTable at `generation` is not among them. Pure.
 */
export function foldDefinition(
  name: string,
  generation: bigint,
  events: readonly { offset: bigint; event: LogEvent }[],
): TableDefinition | null {
  let definition: TableDefinition | null = null;
  for (const { offset, event } of events) {
    if (offset === generation && event.type === "CreateTable" && event.table.name === name) {
      definition = event.table;
    } else if (definition !== null && event.type === "UpdateTable" && event.table.name === name) {
      try {
        validateTableUpdate(definition, event.table);
        definition = event.table;
      } catch (error) {
        if (!(error instanceof DbError)) throw error; // refused by apply: not in force
      }
    }
  }
  return definition;
}

/**
 * The definition of `entry`'s table at `timeMs`. Falls back to the current one (with
 * `fellBack`) when the catalog no longer holds the CreateTable.
 */
export async function definitionAt(
  kafka: Kafka,
  admin: Admin,
  entry: CatalogEntry,
  timeMs: number,
): Promise<{ definition: TableDefinition; fellBack: boolean }> {
  const generation = entry.generation;
  const [start] = await logStartOffsets(admin, CATALOG_TOPIC, 1);
  if (start === undefined || start > generation) {
    return { definition: entry.definition, fellBack: true };
  }
  const [cutAtTime] = await cutOffsets(admin, CATALOG_TOPIC, 1, timeMs);
  // At least the CreateTable itself, even for an instant before it (an empty table).
  const cut = cutAtTime !== undefined && cutAtTime > generation ? cutAtTime : generation + 1n;
  const events: { offset: bigint; event: LogEvent }[] = [];
  await consumeRange(
    kafka,
    CATALOG_TOPIC,
    [generation],
    new Set([0]),
    (_, last) => last >= cut - 1n,
    async (_, messages) => {
      for (const message of messages) {
        const offset = BigInt(message.offset);
        if (offset < generation || offset >= cut || message.value === null) continue;
        try {
          events.push({ offset, event: decodeEvent(message.value) });
        } catch {
          // Not a LogEvent: apply skips it too.
        }
      }
    },
  );
  const definition = foldDefinition(entry.definition.name, generation, events);
  return definition === null
    ? { definition: entry.definition, fellBack: true }
    : { definition, fellBack: false };
}
