// Which .avsc files make up each published writer schema. A record kind's versions are
// listed oldest first; the last is the one logkv writes, and every one is registered for
// reading forever (schemas/README.md, "Publishing a new version"). An entry is never edited
// or removed once released: test/schemas/fixtures/fingerprints.json pins their fingerprints.

import { assert } from "../../services/shared/assert.js";
import { composeSchema, type SchemaJson } from "../canonical-form.js";
import type { SchemaVersion } from "../single-object.js";
import { AVSC_SOURCES } from "./sources.js";

/** A published version: its root file and the files that define the types it names. */
export interface PublishedVersion {
  version: number;
  root: string;
  parts: readonly string[];
}

const ATTRIBUTE_VALUE_V1 = ["attribute-value-v1.avsc"];
const TABLE_DEFINITION_V1_PARTS = [
  "key-attribute-v1.avsc",
  "projection-v1.avsc",
  "local-secondary-index-v1.avsc",
  "global-secondary-index-v1.avsc",
];
const ITEM_EVENT_V1_PARTS = [...ATTRIBUTE_VALUE_V1, "return-values-v1.avsc"];

const TXN_ACTION_V1_PARTS = [...ITEM_EVENT_V1_PARTS, "txn-action-v1.avsc"];
const TXN_RECORD_V1_PARTS = [
  ...TXN_ACTION_V1_PARTS,
  "topic-partition-v1.avsc",
  "txn-prepare-v1.avsc",
  "txn-decision-v1.avsc",
];

/** Every record kind logkv writes with single-object encoding, by full Avro name. */
export const PUBLISHED = {
  "logkv.LogEvent": [
    {
      version: 1,
      root: "log-event-v1.avsc",
      parts: [
        ...TABLE_DEFINITION_V1_PARTS,
        "table-definition-v1.avsc",
        "create-table-v1.avsc",
        "update-table-v1.avsc",
        "delete-table-v1.avsc",
        ...ITEM_EVENT_V1_PARTS,
        "put-item-v1.avsc",
        "update-item-v1.avsc",
        "delete-item-v1.avsc",
        "ttl-delete-v1.avsc",
      ],
    },
    {
      // CreateTable v2: `restore`, the restore that creates the table; UpdateTable v2: the
      // FinishRestore change that ends it (issue 7).
      version: 2,
      root: "log-event-v1.avsc",
      parts: [
        ...TABLE_DEFINITION_V1_PARTS,
        "table-definition-v1.avsc",
        "restore-origin-v1.avsc",
        "create-table-v2.avsc",
        "update-table-v2.avsc",
        "delete-table-v1.avsc",
        ...ITEM_EVENT_V1_PARTS,
        "put-item-v1.avsc",
        "update-item-v1.avsc",
        "delete-item-v1.avsc",
        "ttl-delete-v1.avsc",
      ],
    },
    {
      // PutItem v2: `restoreEpoch`, a restore job's write; RestoreFence, a restore job's
      // claim or seal of a target partition (issue 7, fencing a frozen owner's writes).
      version: 3,
      root: "log-event-v2.avsc",
      parts: [
        ...TABLE_DEFINITION_V1_PARTS,
        "table-definition-v1.avsc",
        "restore-origin-v1.avsc",
        "create-table-v2.avsc",
        "update-table-v2.avsc",
        "delete-table-v1.avsc",
        ...ITEM_EVENT_V1_PARTS,
        "put-item-v2.avsc",
        "update-item-v1.avsc",
        "delete-item-v1.avsc",
        "ttl-delete-v1.avsc",
        "restore-fence-v1.avsc",
      ],
    },
    {
      // The envelope's catalogPosition: the catalog offset an item write was validated
      // against, so apply decides with the definition as of it (issue 6, catalog races).
      version: 4,
      root: "log-event-v3.avsc",
      parts: [
        ...TABLE_DEFINITION_V1_PARTS,
        "table-definition-v1.avsc",
        "restore-origin-v1.avsc",
        "create-table-v2.avsc",
        "update-table-v2.avsc",
        "delete-table-v1.avsc",
        ...ITEM_EVENT_V1_PARTS,
        "put-item-v2.avsc",
        "update-item-v1.avsc",
        "delete-item-v1.avsc",
        "ttl-delete-v1.avsc",
        "restore-fence-v1.avsc",
      ],
    },
  ],
  "logkv.TableDefinition": [
    { version: 1, root: "table-definition-v1.avsc", parts: TABLE_DEFINITION_V1_PARTS },
  ],
  "logkv.StoredItem": [{ version: 1, root: "stored-item-v1.avsc", parts: ATTRIBUTE_VALUE_V1 }],
  "logkv.Outcome": [{ version: 1, root: "outcome-v1.avsc", parts: ATTRIBUTE_VALUE_V1 }],
  "logkv.ChangeEvent": [{ version: 1, root: "change-event-v1.avsc", parts: ATTRIBUTE_VALUE_V1 }],
  // Transactions (materializer/transactions/README.md).
  "logkv.TxnRecord": [
    { version: 1, root: "txn-record-v1.avsc", parts: TXN_RECORD_V1_PARTS },
    // The envelope's catalogPosition: the catalog offset a prepare was validated against.
    { version: 2, root: "txn-record-v2.avsc", parts: TXN_RECORD_V1_PARTS },
  ],
  "logkv.TxnEntry": [{ version: 1, root: "txn-entry-v1.avsc", parts: TXN_ACTION_V1_PARTS }],
  "logkv.TxnOutcome": [
    {
      version: 1,
      root: "txn-outcome-v1.avsc",
      parts: [...ATTRIBUTE_VALUE_V1, "cancellation-reason-v1.avsc"],
    },
  ],
  "logkv.TxnState": [
    {
      version: 1,
      root: "txn-state-v1.avsc",
      parts: [...ATTRIBUTE_VALUE_V1, "cancellation-reason-v1.avsc", "topic-partition-v1.avsc"],
    },
  ],
} as const satisfies Record<string, readonly PublishedVersion[]>;

export type RecordKind = keyof typeof PUBLISHED;

/** The parsed JSON of one schemas/avro file. */
export function avscJson(file: string): SchemaJson {
  const text = AVSC_SOURCES[file];
  assert(text !== undefined, `no schema file ${file}`);
  return JSON.parse(text) as SchemaJson;
}

/** The self-contained writer schema of one published version. */
export function composeVersion(published: PublishedVersion): SchemaVersion {
  const schema = composeSchema(avscJson(published.root), published.parts.map(avscJson));
  return { version: published.version, schema };
}

/** Every published writer schema of `kind`, oldest first. */
export function publishedVersions(kind: RecordKind): SchemaVersion[] {
  return PUBLISHED[kind].map(composeVersion);
}
