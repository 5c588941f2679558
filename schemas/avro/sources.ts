// Generated: the exact text of every schemas/avro/*.avsc file, so that the schemas ship in
// dist/ (tsc copies no .avsc files). The .avsc files are the source;
// test/schemas/avsc-files.test.ts fails when the two differ, and rewrites this file when
// run with LOGKV_REWRITE=1.

export const AVSC_SOURCES: Readonly<Record<string, string>> = {
  "attribute-value-v1.avsc": `{
  "type": "record",
  "name": "AttributeValue",
  "namespace": "logkv",
  "doc": "One attribute value: exactly one of DynamoDB's S, N, B, BOOL, NULL, L, M, SS, NS, BS.",
  "fields": [
    {
      "name": "value",
      "type": [
        {
          "type": "record",
          "name": "StringValue",
          "fields": [{ "name": "S", "type": "string" }]
        },
        {
          "type": "record",
          "name": "NumberValue",
          "doc": "The canonical decimal string (materializer/DESIGN.md), never a float.",
          "fields": [{ "name": "N", "type": "string" }]
        },
        {
          "type": "record",
          "name": "BinaryValue",
          "fields": [{ "name": "B", "type": "bytes" }]
        },
        {
          "type": "record",
          "name": "BooleanValue",
          "fields": [{ "name": "BOOL", "type": "boolean" }]
        },
        {
          "type": "record",
          "name": "NullValue",
          "doc": "DynamoDB's { NULL: true }; the branch itself is the value.",
          "fields": []
        },
        {
          "type": "record",
          "name": "ListValue",
          "fields": [{ "name": "L", "type": { "type": "array", "items": "AttributeValue" } }]
        },
        {
          "type": "record",
          "name": "MapValue",
          "doc": "Keys are encoded sorted, so equal maps have equal bytes.",
          "fields": [{ "name": "M", "type": { "type": "map", "values": "AttributeValue" } }]
        },
        {
          "type": "record",
          "name": "StringSetValue",
          "fields": [{ "name": "SS", "type": { "type": "array", "items": "string" } }]
        },
        {
          "type": "record",
          "name": "NumberSetValue",
          "fields": [{ "name": "NS", "type": { "type": "array", "items": "string" } }]
        },
        {
          "type": "record",
          "name": "BinarySetValue",
          "fields": [{ "name": "BS", "type": { "type": "array", "items": "bytes" } }]
        }
      ]
    }
  ]
}
`,
  "cancellation-reason-v1.avsc": `{
  "type": "record",
  "name": "CancellationReason",
  "namespace": "logkv",
  "doc": "Why one action would stop a transaction (None when it would not).",
  "fields": [
    { "name": "index", "type": "int" },
    {
      "name": "code",
      "type": {
        "type": "enum",
        "name": "CancellationCode",
        "symbols": ["None", "ConditionalCheckFailed", "TransactionConflict", "ValidationError"]
      }
    },
    { "name": "message", "type": ["null", "string"], "default": null },
    {
      "name": "item",
      "type": ["null", { "type": "map", "values": "logkv.AttributeValue" }],
      "default": null
    }
  ]
}
`,
  "change-event-v1.avsc": `{
  "type": "record",
  "name": "ChangeEvent",
  "namespace": "logkv",
  "doc": "One item change, for the change stream and GSI maintenance.",
  "fields": [
    { "name": "table", "type": "string" },
    { "name": "partition", "type": "int" },
    { "name": "offset", "type": "long" },
    { "name": "timestampMs", "type": "long" },
    {
      "name": "kind",
      "type": {
        "type": "enum",
        "name": "ChangeKind",
        "symbols": ["PUT", "UPDATE", "DELETE", "TTL_DELETE"]
      }
    },
    { "name": "keys", "type": { "type": "map", "values": "logkv.AttributeValue" } },
    {
      "name": "oldImage",
      "type": ["null", { "type": "map", "values": "logkv.AttributeValue" }],
      "default": null
    },
    {
      "name": "newImage",
      "type": ["null", { "type": "map", "values": "logkv.AttributeValue" }],
      "default": null
    }
  ]
}
`,
  "create-table-v1.avsc": `{
  "type": "record",
  "name": "CreateTable",
  "namespace": "logkv",
  "doc": "Catalog event: a new table with its full definition.",
  "fields": [{ "name": "table", "type": "logkv.TableDefinition" }]
}
`,
  "create-table-v2.avsc": `{
  "type": "record",
  "name": "CreateTable",
  "namespace": "logkv",
  "doc": "Catalog event: a new table with its full definition; restore is set when a restore creates it.",
  "fields": [
    { "name": "table", "type": "logkv.TableDefinition" },
    { "name": "restore", "type": ["null", "logkv.RestoreOrigin"], "default": null }
  ]
}
`,
  "delete-item-v1.avsc": `{
  "type": "record",
  "name": "DeleteItem",
  "namespace": "logkv",
  "doc": "Item event: delete the item if the condition holds at apply time.",
  "fields": [
    { "name": "table", "type": "string" },
    { "name": "key", "type": { "type": "map", "values": "logkv.AttributeValue" } },
    { "name": "condition", "type": ["null", "string"], "default": null },
    { "name": "names", "type": { "type": "map", "values": "string" } },
    { "name": "values", "type": { "type": "map", "values": "logkv.AttributeValue" } },
    { "name": "returnValues", "type": "logkv.ReturnValues" },
    { "name": "requestId", "type": ["null", "string"], "default": null }
  ]
}
`,
  "delete-table-v1.avsc": `{
  "type": "record",
  "name": "DeleteTable",
  "namespace": "logkv",
  "doc": "Catalog event: the table and all its items and indexes go away.",
  "fields": [{ "name": "table", "type": "string" }]
}
`,
  "global-secondary-index-v1.avsc": `{
  "type": "record",
  "name": "GlobalSecondaryIndex",
  "namespace": "logkv",
  "doc": "Another partition key (and optional sort key), maintained from change events.",
  "fields": [
    { "name": "name", "type": "string" },
    { "name": "partitionKey", "type": "logkv.KeyAttribute" },
    { "name": "sortKey", "type": ["null", "logkv.KeyAttribute"], "default": null },
    { "name": "projection", "type": "logkv.Projection" }
  ]
}
`,
  "key-attribute-v1.avsc": `{
  "type": "record",
  "name": "KeyAttribute",
  "namespace": "logkv",
  "doc": "A key attribute of a table or index: its name and scalar type.",
  "fields": [
    { "name": "name", "type": "string" },
    { "name": "type", "type": { "type": "enum", "name": "KeyType", "symbols": ["S", "N", "B"] } }
  ]
}
`,
  "local-secondary-index-v1.avsc": `{
  "type": "record",
  "name": "LocalSecondaryIndex",
  "namespace": "logkv",
  "doc": "Same partition key as the table, another sort key; strongly consistent.",
  "fields": [
    { "name": "name", "type": "string" },
    { "name": "sortKey", "type": "logkv.KeyAttribute" },
    { "name": "projection", "type": "logkv.Projection" }
  ]
}
`,
  "log-event-v1.avsc": `{
  "type": "record",
  "name": "LogEvent",
  "namespace": "logkv",
  "doc": "Every record value on logkv.catalog and logkv.table.*; new kinds go at the union's end.",
  "fields": [
    {
      "name": "event",
      "type": [
        "logkv.CreateTable",
        "logkv.UpdateTable",
        "logkv.DeleteTable",
        "logkv.PutItem",
        "logkv.UpdateItem",
        "logkv.DeleteItem",
        "logkv.TtlDelete"
      ]
    }
  ]
}
`,
  "log-event-v2.avsc": `{
  "type": "record",
  "name": "LogEvent",
  "namespace": "logkv",
  "doc": "Every record value on logkv.catalog and logkv.table.*; new kinds go at the union's end.",
  "fields": [
    {
      "name": "event",
      "type": [
        "logkv.CreateTable",
        "logkv.UpdateTable",
        "logkv.DeleteTable",
        "logkv.PutItem",
        "logkv.UpdateItem",
        "logkv.DeleteItem",
        "logkv.TtlDelete",
        "logkv.RestoreFence"
      ]
    }
  ]
}
`,
  "log-event-v3.avsc": `{
  "type": "record",
  "name": "LogEvent",
  "namespace": "logkv",
  "doc": "Every record value on logkv.catalog and logkv.table.*; new kinds go at the union's end.",
  "fields": [
    {
      "name": "event",
      "type": [
        "logkv.CreateTable",
        "logkv.UpdateTable",
        "logkv.DeleteTable",
        "logkv.PutItem",
        "logkv.UpdateItem",
        "logkv.DeleteItem",
        "logkv.TtlDelete",
        "logkv.RestoreFence"
      ]
    },
    {
      "name": "catalogPosition",
      "type": ["null", "long"],
      "default": null,
      "doc": "Item events: the catalog offset the writer validated against (every catalog record below it applied); apply decides with the table's definition as of it."
    }
  ]
}
`,
  "outcome-v1.avsc": `{
  "type": "record",
  "name": "Outcome",
  "namespace": "logkv",
  "doc": "What applying one event decided; stored under key o<topic><partition><offset>.",
  "fields": [
    {
      "name": "status",
      "type": {
        "type": "enum",
        "name": "OutcomeStatus",
        "symbols": ["OK", "CONDITIONAL_CHECK_FAILED", "VALIDATION"]
      }
    },
    {
      "name": "attributes",
      "type": ["null", { "type": "map", "values": "logkv.AttributeValue" }],
      "default": null
    },
    {
      "name": "item",
      "type": ["null", { "type": "map", "values": "logkv.AttributeValue" }],
      "default": null
    },
    { "name": "message", "type": ["null", "string"], "default": null }
  ]
}
`,
  "projection-v1.avsc": `{
  "type": "record",
  "name": "Projection",
  "namespace": "logkv",
  "doc": "Which attributes an index copies; nonKeyAttributes is empty unless type is INCLUDE.",
  "fields": [
    {
      "name": "type",
      "type": {
        "type": "enum",
        "name": "ProjectionType",
        "symbols": ["ALL", "KEYS_ONLY", "INCLUDE"]
      }
    },
    { "name": "nonKeyAttributes", "type": { "type": "array", "items": "string" } }
  ]
}
`,
  "put-item-v1.avsc": `{
  "type": "record",
  "name": "PutItem",
  "namespace": "logkv",
  "doc": "Item event: replace the whole item if the condition holds at apply time.",
  "fields": [
    { "name": "table", "type": "string" },
    { "name": "item", "type": { "type": "map", "values": "logkv.AttributeValue" } },
    { "name": "condition", "type": ["null", "string"], "default": null },
    { "name": "names", "type": { "type": "map", "values": "string" } },
    { "name": "values", "type": { "type": "map", "values": "logkv.AttributeValue" } },
    { "name": "returnValues", "type": "logkv.ReturnValues" },
    { "name": "requestId", "type": ["null", "string"], "default": null }
  ]
}
`,
  "put-item-v2.avsc": `{
  "type": "record",
  "name": "PutItem",
  "namespace": "logkv",
  "doc": "Item event: replace the whole item if the condition holds at apply time.",
  "fields": [
    { "name": "table", "type": "string" },
    { "name": "item", "type": { "type": "map", "values": "logkv.AttributeValue" } },
    { "name": "condition", "type": ["null", "string"], "default": null },
    { "name": "names", "type": { "type": "map", "values": "string" } },
    { "name": "values", "type": { "type": "map", "values": "logkv.AttributeValue" } },
    { "name": "returnValues", "type": "logkv.ReturnValues" },
    { "name": "requestId", "type": ["null", "string"], "default": null },
    {
      "name": "restoreEpoch",
      "type": ["null", "long"],
      "default": null,
      "doc": "A restore job's write: the owner epoch of the job (materializer/restore/README.md, fencing). Applied only while its partition's restore fence is at this epoch and not sealed."
    }
  ]
}
`,
  "restore-fence-v1.avsc": `{
  "type": "record",
  "name": "RestoreFence",
  "namespace": "logkv",
  "doc": "A restore job's marker in one partition of its target's topic: claims the partition for its owner epoch (restore writes of lower epochs are dropped from here on), or seals it (every restore write after it is dropped). materializer/restore/README.md.",
  "fields": [
    { "name": "table", "type": "string" },
    { "name": "epoch", "type": "long" },
    { "name": "seal", "type": "boolean" }
  ]
}
`,
  "restore-origin-v1.avsc": `{
  "type": "record",
  "name": "RestoreOrigin",
  "namespace": "logkv",
  "doc": "A table created by a restore: refused by every node until the restore's completion record (materializer/restore/README.md).",
  "fields": [
    { "name": "source", "type": "string", "doc": "Source table, or backup:<name|url>." },
    { "name": "timeMs", "type": "long", "doc": "The instant restored, epoch ms." },
    { "name": "jobId", "type": "string", "doc": "The restore job that created the table." }
  ]
}
`,
  "return-values-v1.avsc": `{
  "type": "enum",
  "name": "ReturnValues",
  "namespace": "logkv",
  "doc": "Which attributes a write's outcome carries, as in DynamoDB.",
  "symbols": ["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"]
}
`,
  "stored-item-v1.avsc": `{
  "type": "record",
  "name": "StoredItem",
  "namespace": "logkv",
  "doc": "An item as the materializer stores it under key i<table><pk>[<sk>].",
  "fields": [
    { "name": "attributes", "type": { "type": "map", "values": "logkv.AttributeValue" } },
    { "name": "version", "type": "long", "doc": "1 for the first write, then +1 per write." },
    { "name": "lastOffset", "type": "long", "doc": "Offset of the event that last wrote it." }
  ]
}
`,
  "table-definition-v1.avsc": `{
  "type": "record",
  "name": "TableDefinition",
  "namespace": "logkv",
  "doc": "A table as the catalog knows it; stored under key c<table>, carried by catalog events.",
  "fields": [
    { "name": "name", "type": "string" },
    { "name": "partitionKey", "type": "logkv.KeyAttribute" },
    { "name": "sortKey", "type": ["null", "logkv.KeyAttribute"], "default": null },
    {
      "name": "localIndexes",
      "type": { "type": "array", "items": "logkv.LocalSecondaryIndex" }
    },
    {
      "name": "globalIndexes",
      "type": { "type": "array", "items": "logkv.GlobalSecondaryIndex" }
    },
    { "name": "ttlAttribute", "type": ["null", "string"], "default": null },
    { "name": "partitions", "type": "int" }
  ]
}
`,
  "topic-partition-v1.avsc": `{
  "type": "record",
  "name": "TopicPartition",
  "namespace": "logkv",
  "doc": "A partition of a table topic: a transaction participant.",
  "fields": [
    { "name": "topic", "type": "string" },
    { "name": "partition", "type": "int" }
  ]
}
`,
  "ttl-delete-v1.avsc": `{
  "type": "record",
  "name": "TtlDelete",
  "namespace": "logkv",
  "doc": "Item event from the TTL sweeper; applies only if the item is still expired then.",
  "fields": [
    { "name": "table", "type": "string" },
    { "name": "key", "type": { "type": "map", "values": "logkv.AttributeValue" } },
    { "name": "expiresAtMs", "type": "long" }
  ]
}
`,
  "txn-action-v1.avsc": `{
  "type": "record",
  "name": "TxnAction",
  "namespace": "logkv",
  "doc": "One action of a transaction; item is the whole item for Put, else the key.",
  "fields": [
    { "name": "index", "type": "int", "doc": "Position in the client's request." },
    {
      "name": "kind",
      "type": {
        "type": "enum",
        "name": "TxnActionKind",
        "symbols": ["Put", "Update", "Delete", "ConditionCheck"]
      }
    },
    { "name": "table", "type": "string" },
    { "name": "item", "type": { "type": "map", "values": "logkv.AttributeValue" } },
    { "name": "update", "type": ["null", "string"], "default": null },
    { "name": "condition", "type": ["null", "string"], "default": null },
    { "name": "names", "type": { "type": "map", "values": "string" } },
    { "name": "values", "type": { "type": "map", "values": "logkv.AttributeValue" } },
    { "name": "returnValuesOnConditionCheckFailure", "type": "logkv.ReturnValues" }
  ]
}
`,
  "txn-decision-v1.avsc": `{
  "type": "record",
  "name": "TxnDecision",
  "namespace": "logkv",
  "doc": "Phase two on one participant, sent once the decision is durable.",
  "fields": [
    { "name": "txnId", "type": "string" },
    { "name": "commit", "type": "boolean" },
    { "name": "deadlineMs", "type": "long" }
  ]
}
`,
  "txn-entry-v1.avsc": `{
  "type": "record",
  "name": "TxnEntry",
  "namespace": "logkv",
  "doc": "What a partition keeps of a transaction: prepared actions, or its decision.",
  "fields": [
    {
      "name": "state",
      "type": {
        "type": "enum",
        "name": "TxnEntryState",
        "symbols": ["PREPARED", "COMMITTED", "ABORTED"]
      }
    },
    { "name": "deadlineMs", "type": "long" },
    { "name": "timestampMs", "type": "long", "doc": "The prepare's record time." },
    { "name": "actions", "type": { "type": "array", "items": "logkv.TxnAction" } }
  ]
}
`,
  "txn-outcome-v1.avsc": `{
  "type": "record",
  "name": "TxnOutcome",
  "namespace": "logkv",
  "doc": "What applying one transaction record decided; stored beside the record's Outcome.",
  "fields": [
    {
      "name": "kind",
      "type": {
        "type": "enum",
        "name": "TxnOutcomeKind",
        "symbols": ["VOTE", "COMMITTED", "ABORTED", "IGNORED"]
      }
    },
    { "name": "txnId", "type": "string" },
    { "name": "commit", "type": "boolean", "doc": "VOTE: yes or no." },
    {
      "name": "reasons",
      "type": { "type": "array", "items": "logkv.CancellationReason" },
      "doc": "VOTE: one per action; COMMITTED: actions skipped."
    },
    { "name": "message", "type": ["null", "string"], "default": null }
  ]
}
`,
  "txn-prepare-v1.avsc": `{
  "type": "record",
  "name": "TxnPrepare",
  "namespace": "logkv",
  "doc": "Phase one on one participant: vote on and hold this partition's actions.",
  "fields": [
    { "name": "txnId", "type": "string" },
    { "name": "deadlineMs", "type": "long", "doc": "Record time after which it votes no." },
    { "name": "participants", "type": { "type": "array", "items": "logkv.TopicPartition" } },
    { "name": "actions", "type": { "type": "array", "items": "logkv.TxnAction" } }
  ]
}
`,
  "txn-record-v1.avsc": `{
  "type": "record",
  "name": "TxnRecord",
  "namespace": "logkv",
  "doc": "A transaction record on a table topic; new kinds go at the union's end.",
  "fields": [{ "name": "record", "type": ["logkv.TxnPrepare", "logkv.TxnDecision"] }]
}
`,
  "txn-record-v2.avsc": `{
  "type": "record",
  "name": "TxnRecord",
  "namespace": "logkv",
  "doc": "A transaction record on a table topic; new kinds go at the union's end.",
  "fields": [
    { "name": "record", "type": ["logkv.TxnPrepare", "logkv.TxnDecision"] },
    {
      "name": "catalogPosition",
      "type": ["null", "long"],
      "default": null,
      "doc": "TxnPrepare: the catalog offset the coordinator validated against; the vote uses the table definitions as of it."
    }
  ]
}
`,
  "txn-state-v1.avsc": `{
  "type": "record",
  "name": "TxnState",
  "namespace": "logkv",
  "doc": "A record of logkv.txn-state: a transaction began, or its decision (first one wins).",
  "fields": [
    { "name": "txnId", "type": "string" },
    {
      "name": "kind",
      "type": { "type": "enum", "name": "TxnStateKind", "symbols": ["BEGIN", "COMMIT", "ABORT"] }
    },
    { "name": "deadlineMs", "type": "long" },
    { "name": "participants", "type": { "type": "array", "items": "logkv.TopicPartition" } },
    { "name": "token", "type": ["null", "string"], "default": null },
    { "name": "digest", "type": ["null", "string"], "default": null },
    {
      "name": "reasons",
      "type": { "type": "array", "items": "logkv.CancellationReason" },
      "doc": "ABORT: why, one per action of the request (empty when no vote was taken)."
    }
  ]
}
`,
  "update-item-v1.avsc": `{
  "type": "record",
  "name": "UpdateItem",
  "namespace": "logkv",
  "doc": "Item event: apply an update expression if the condition holds at apply time.",
  "fields": [
    { "name": "table", "type": "string" },
    { "name": "key", "type": { "type": "map", "values": "logkv.AttributeValue" } },
    { "name": "update", "type": "string" },
    { "name": "condition", "type": ["null", "string"], "default": null },
    { "name": "names", "type": { "type": "map", "values": "string" } },
    { "name": "values", "type": { "type": "map", "values": "logkv.AttributeValue" } },
    { "name": "returnValues", "type": "logkv.ReturnValues" },
    { "name": "requestId", "type": ["null", "string"], "default": null }
  ]
}
`,
  "update-table-v1.avsc": `{
  "type": "record",
  "name": "UpdateTable",
  "namespace": "logkv",
  "doc": "Catalog event: the full new definition plus the changes that led to it.",
  "fields": [
    { "name": "table", "type": "logkv.TableDefinition" },
    {
      "name": "changes",
      "type": {
        "type": "array",
        "items": [
          {
            "type": "record",
            "name": "AddGlobalIndex",
            "fields": [{ "name": "index", "type": "logkv.GlobalSecondaryIndex" }]
          },
          {
            "type": "record",
            "name": "RemoveGlobalIndex",
            "fields": [{ "name": "indexName", "type": "string" }]
          },
          {
            "type": "record",
            "name": "SetTtlAttribute",
            "doc": "A null ttlAttribute turns TTL off.",
            "fields": [{ "name": "ttlAttribute", "type": ["null", "string"], "default": null }]
          }
        ]
      }
    }
  ]
}
`,
  "update-table-v2.avsc": `{
  "type": "record",
  "name": "UpdateTable",
  "namespace": "logkv",
  "doc": "Catalog event: the full new definition plus the changes that led to it.",
  "fields": [
    { "name": "table", "type": "logkv.TableDefinition" },
    {
      "name": "changes",
      "type": {
        "type": "array",
        "items": [
          {
            "type": "record",
            "name": "AddGlobalIndex",
            "fields": [{ "name": "index", "type": "logkv.GlobalSecondaryIndex" }]
          },
          {
            "type": "record",
            "name": "RemoveGlobalIndex",
            "fields": [{ "name": "indexName", "type": "string" }]
          },
          {
            "type": "record",
            "name": "SetTtlAttribute",
            "doc": "A null ttlAttribute turns TTL off.",
            "fields": [{ "name": "ttlAttribute", "type": ["null", "string"], "default": null }]
          },
          {
            "type": "record",
            "name": "FinishRestore",
            "doc": "The restore that created the table is complete: from here on it is an ordinary table.",
            "fields": [{ "name": "jobId", "type": "string" }]
          }
        ]
      }
    }
  ]
}
`,
};
