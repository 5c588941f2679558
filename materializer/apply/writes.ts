// What apply decides to write, in logical terms. The shell (materializer/consume) turns
// these into LevelDB operations with store/layout.ts and the Avro codecs; apply itself knows
// nothing of bytes or storage.
import type { RestoreOrigin, StoredItem, TableDefinition } from "../../schemas/events.js";
import type { Item } from "../values/attribute-value.js";
import type { RestoreFenceState } from "../restore/fence.js";

export type Write =
  /**
   * A table created or changed; `generation` is the catalog offset of its CreateTable
   * (-1 for a change: the shell keeps the table's generation). `restore`: on a creation,
   * the restore creating it (absent: none); on a change, null ends it, absent keeps it.
   */
  | {
      type: "table";
      definition: TableDefinition;
      generation: bigint;
      restore?: RestoreOrigin | null;
    }
  /** A table dropped with everything stored under it. */
  | { type: "dropTable"; name: string }
  /** A table partition's restore fence set (restore/fence.ts). */
  | { type: "restoreFence"; topic: string; partition: number; fence: RestoreFenceState }
  /** An item written (stored) or deleted (null). `key` holds only its key attributes. */
  | { type: "item"; table: string; key: Item; stored: StoredItem | null }
  /** A local secondary index entry written (projected) or deleted (null). */
  | {
      type: "lsi";
      table: string;
      index: string;
      /** The table key of the base item and the index's sort key attribute value. */
      key: Item;
      indexSortKey: Item;
      projected: Item | null;
    };
