// Table definitions by catalog offset (README.md, "Writes decided at their catalog
// position"). An item write or a transaction prepare stamped with a catalog position P is
// decided with its table's definition as of P: the one set by the table's last CreateTable
// or UpdateTable below P. The applier keeps every definition of each current table here, in
// the store (atomic with the catalog batch that set it) and in memory:
//
//   m  catalog-history  table  offset(int64)   -> table definition (Avro)
//
// Entries below the table's generation belong to an older table of the same name and are
// never answered; a drop deletes the table's entries. A store written before this history
// existed holds none: open() records each table's current definition at its generation, so
// stamps after the upgrade are answered (a stamp between an UpdateTable applied before the
// upgrade and the generation gets the current definition; see "What is not done").
import { decodeTableDefinition, encodeTableDefinition } from "../../schemas/events.js";
import type { TableDefinition } from "../../schemas/events.js";
import type { CatalogEntry } from "../state/records.js";
import { decodeKey, encodeKey, prefixRange, type PrefixRange } from "../store/key-codec.js";
import type { BatchOp, KvStore } from "../store/store.js";
import { Space } from "../store/layout.js";
import { assert } from "../../services/shared/assert.js";

const HISTORY = [{ space: Space.meta }, { name: "catalog-history" }] as const;

export function historyKey(table: string, offset: bigint): Buffer {
  return encodeKey([...HISTORY, { name: table }, { int64: offset }]);
}

/** Every entry of one table, or of every table. */
export function historyRange(table?: string): PrefixRange {
  return prefixRange(table === undefined ? [...HISTORY] : [...HISTORY, { name: table }]);
}

export interface HistoryEntry {
  /** The catalog offset of the CreateTable or UpdateTable that set the definition. */
  offset: bigint;
  definition: TableDefinition;
}

/**
 * The definition `entry`'s table had at catalog position `position` (every catalog record
 * below it applied), from its history; undefined when the table (this generation) did not
 * exist yet at that position. Pure.
 */
export function definitionAtPosition(
  entry: CatalogEntry,
  history: readonly HistoryEntry[],
  position: bigint,
): TableDefinition | undefined {
  if (position <= entry.generation) return undefined;
  // Newest first: a write stamped after the table's last change (nearly all) stops at once.
  for (let i = history.length - 1; i >= 0; i--) {
    const { offset, definition } = history[i]!;
    if (offset < entry.generation) break;
    if (offset < position) return definition;
  }
  // A generation with no entry at all cannot happen (open() seeds one); the current one
  // is then the best answer.
  return entry.definition;
}

export class CatalogHistory {
  /** Per table, its entries in offset order. */
  private readonly byTable = new Map<string, HistoryEntry[]>();

  /**
   * Loads every entry, and seeds the current definition of each table that has none (a
   * store from before the history): the seed's put is returned, to be written.
   */
  static async load(
    store: KvStore,
    tables: Iterable<CatalogEntry>,
  ): Promise<{ history: CatalogHistory; seed: BatchOp[] }> {
    const history = new CatalogHistory();
    for await (const [key, value] of store.iterate(historyRange())) {
      const parts = decodeKey(key);
      const table = parts[2];
      const offset = parts[3];
      assert(table !== undefined && "name" in table, "catalog history key without table");
      assert(offset !== undefined && "int64" in offset, "catalog history key without offset");
      history.add(table.name, { offset: offset.int64, definition: decodeTableDefinition(value) });
    }
    const seed: BatchOp[] = [];
    for (const entry of tables) {
      const name = entry.definition.name;
      const list = history.byTable.get(name) ?? [];
      if (list.some((e) => e.offset >= entry.generation)) continue;
      seed.push(history.putOp(name, entry.generation, entry.definition));
      history.add(name, { offset: entry.generation, definition: entry.definition });
    }
    return { history, seed };
  }

  entries(table: string): readonly HistoryEntry[] {
    return this.byTable.get(table) ?? [];
  }

  /** The table's definition at catalog position `position` (definitionAtPosition). */
  definitionAt(entry: CatalogEntry, position: bigint): TableDefinition | undefined {
    return definitionAtPosition(entry, this.entries(entry.definition.name), position);
  }

  putOp(table: string, offset: bigint, definition: TableDefinition): BatchOp {
    return {
      type: "put",
      key: historyKey(table, offset),
      value: encodeTableDefinition(definition),
    };
  }

  /** Records an entry already written to the store (offsets arrive in increasing order). */
  add(table: string, entry: HistoryEntry): void {
    let list = this.byTable.get(table);
    if (list === undefined) this.byTable.set(table, (list = []));
    const last = list[list.length - 1];
    if (last !== undefined && last.offset >= entry.offset) {
      if (last.offset === entry.offset) list[list.length - 1] = entry;
      else {
        list.push(entry);
        list.sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
      }
      return;
    }
    list.push(entry);
  }

  /** Forgets the entries of an older generation (the table was dropped). */
  forgetBelow(table: string, generation: bigint): void {
    const list = this.byTable.get(table);
    if (list === undefined) return;
    const kept = list.filter((e) => e.offset >= generation);
    if (kept.length === 0) this.byTable.delete(table);
    else this.byTable.set(table, kept);
  }

  forget(table: string): void {
    this.byTable.delete(table);
  }
}
