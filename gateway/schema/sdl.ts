// The GraphQL schema's SDL, embedded so the compiled gateway needs no file beside it. The
// source of truth is schemas/graphql/schema.graphql; test/gateway/schema.test.ts checks that
// this copy equals it. Edit the .graphql file, then paste it here.
export const typeDefs = `"""
An item, key, attribute value or placeholder map as plain JSON: strings are S, finite
numbers N, booleans BOOL, null NULL, arrays L, objects M. What plain JSON cannot carry
exactly is a tagged object with one key: {"$N": "12345678901234567890.5"}, {"$B": "<base64>"},
{"$SS": ["a"]}, {"$NS": ["1"]}, {"$BS": ["<base64>"]}, and {"$M": {...}} for a map taken
literally. Output uses the same rules (gateway/README.md), so every value round-trips.
"""
scalar JSON

"""
How fresh a read must be. STRONG: at least the partition's committed end offset when the
read starts. SESSION: at least the session token's offsets (argument "after" or header
x-logkv-session). EVENTUAL: whatever is applied now; extensions report the staleness.
"""
enum Consistency {
  STRONG
  SESSION
  EVENTUAL
}

enum KeyType {
  S
  N
  B
}

enum ProjectionType {
  ALL
  KEYS_ONLY
  INCLUDE
}

enum ReturnValues {
  NONE
  ALL_OLD
  UPDATED_OLD
  ALL_NEW
  UPDATED_NEW
}

enum ReturnValuesOnConditionCheckFailure {
  NONE
  ALL_OLD
}

input KeyAttributeInput {
  name: String!
  type: KeyType!
}

input ProjectionInput {
  type: ProjectionType! = ALL
  nonKeyAttributes: [String!]
}

input LocalIndexInput {
  name: String!
  sortKey: KeyAttributeInput!
  projection: ProjectionInput
}

input GlobalIndexInput {
  name: String!
  partitionKey: KeyAttributeInput!
  sortKey: KeyAttributeInput
  projection: ProjectionInput
}

input CreateTableInput {
  name: String!
  partitionKey: KeyAttributeInput!
  sortKey: KeyAttributeInput
  localIndexes: [LocalIndexInput!]
  globalIndexes: [GlobalIndexInput!]
  "The attribute holding each item's expiry in epoch seconds; absent: no TTL."
  ttlAttribute: String
  "Partitions of the table's topic (default 4)."
  partitions: Int
}

input UpdateTableInput {
  name: String!
  addGlobalIndexes: [GlobalIndexInput!]
  removeGlobalIndexes: [String!]
  "Absent: unchanged; null: TTL off; a name: TTL on that attribute."
  ttlAttribute: String
}

type KeyAttribute {
  name: String!
  type: KeyType!
}

type Projection {
  type: ProjectionType!
  nonKeyAttributes: [String!]!
}

type LocalIndex {
  name: String!
  sortKey: KeyAttribute!
  projection: Projection!
}

type GlobalIndex {
  name: String!
  partitionKey: KeyAttribute!
  sortKey: KeyAttribute
  projection: Projection!
}

type Table {
  name: String!
  partitionKey: KeyAttribute!
  sortKey: KeyAttribute
  localIndexes: [LocalIndex!]!
  globalIndexes: [GlobalIndex!]!
  ttlAttribute: String
  partitions: Int!
  "The catalog offset of the table's CreateTable, as a decimal string."
  generation: String!
  "The Kafka topic holding the table's events."
  topic: String!
}

type TablePayload {
  table: Table!
  "Session token: pass it as after (or header x-logkv-session) to read your writes."
  token: String!
}

type TableList {
  tableNames: [String!]!
  lastEvaluatedTableName: String
  token: String!
}

type WritePayload {
  "What returnValues asked for; null for NONE or when there is nothing to return."
  attributes: JSON
  token: String!
}

type GetItemPayload {
  "The item, or null when absent."
  item: JSON
  token: String!
}

type ReadPage {
  items: [JSON!]!
  count: Int!
  scannedCount: Int!
  "Pass back as cursor for the next page; null on the last page."
  cursor: String
  lastEvaluatedKey: JSON
  token: String!
}

"""
One table's part of a batchGetItem (at most 100 keys in all, across tables; each table once,
no duplicate keys). projection, names and consistency apply to this table's keys.
"""
input BatchGetTableInput {
  table: String!
  keys: [JSON!]!
  projection: String
  names: JSON
  consistency: Consistency
}

"Keys a batchGetItem did not read, in BatchGetTableInput's shape: send them again."
type BatchGetTableKeys {
  table: String!
  keys: [JSON!]!
  projection: String
  names: JSON
  consistency: Consistency
}

"The items a batchGetItem found in one table (absent keys are left out, order not kept)."
type BatchGetTableItems {
  table: String!
  items: [JSON!]!
}

type BatchGetPayload {
  responses: [BatchGetTableItems!]!
  "Keys not read because the response reached its byte limit (16 MiB, as DynamoDB)."
  unprocessedKeys: [BatchGetTableKeys!]!
  "Session token of every table read."
  token: String!
}

"One write of a batchWriteItem: exactly one of put (an item) or delete (a key)."
input WriteRequestInput {
  put: JSON
  delete: JSON
}

"""
One table's part of a batchWriteItem (at most 25 requests in all, across tables; each table
once; no two requests for the same key; no conditions).
"""
input BatchWriteTableInput {
  table: String!
  requests: [WriteRequestInput!]!
}

type WriteRequest {
  put: JSON
  delete: JSON
}

"Writes a batchWriteItem did not complete, in BatchWriteTableInput's shape: send them again."
type BatchWriteTableRequests {
  table: String!
  requests: [WriteRequest!]!
}

type BatchWritePayload {
  """
  Writes refused by back-pressure or whose outcome did not arrive within the wait limit (the
  latter may still apply; sending again is safe, as puts and deletes are unconditional).
  """
  unprocessedItems: [BatchWriteTableRequests!]!
  "Session token of every offset written."
  token: String!
}

type Query {
  describeTable(name: String!, consistency: Consistency, after: String): Table!
  listTables(
    limit: Int
    exclusiveStartTableName: String
    consistency: Consistency
    after: String
  ): TableList!
  getItem(
    table: String!
    key: JSON!
    consistency: Consistency
    after: String
    projection: String
    names: JSON
    "Time travel: the item as of an instant (ISO 8601 or epoch ms) or a session token."
    asOf: String
  ): GetItemPayload!
  query(
    table: String!
    index: String
    keyCondition: String!
    filter: String
    projection: String
    names: JSON
    values: JSON
    forward: Boolean = true
    limit: Int
    cursor: String
    exclusiveStartKey: JSON
    consistency: Consistency
    after: String
    "Time travel (table or LSI): the items as of an instant or a session token."
    asOf: String
  ): ReadPage!
  scan(
    table: String!
    index: String
    filter: String
    projection: String
    names: JSON
    values: JSON
    limit: Int
    cursor: String
    exclusiveStartKey: JSON
    segment: Int
    totalSegments: Int
    consistency: Consistency
    after: String
  ): ReadPage!
  "Up to 100 keys across tables, as DynamoDB's BatchGetItem."
  batchGetItem(requests: [BatchGetTableInput!]!, after: String): BatchGetPayload!
}

type Mutation {
  createTable(input: CreateTableInput!): TablePayload!
  updateTable(input: UpdateTableInput!): TablePayload!
  deleteTable(name: String!): TablePayload!
  putItem(
    table: String!
    item: JSON!
    condition: String
    names: JSON
    values: JSON
    returnValues: ReturnValues = NONE
    returnValuesOnConditionCheckFailure: ReturnValuesOnConditionCheckFailure = NONE
    requestId: String
    "Idempotency (issue 6): a retry within 10 minutes takes effect at most once."
    clientRequestToken: String
  ): WritePayload!
  updateItem(
    table: String!
    key: JSON!
    update: String!
    condition: String
    names: JSON
    values: JSON
    returnValues: ReturnValues = NONE
    returnValuesOnConditionCheckFailure: ReturnValuesOnConditionCheckFailure = NONE
    requestId: String
    "Idempotency (issue 6): a retry within 10 minutes takes effect at most once."
    clientRequestToken: String
  ): WritePayload!
  deleteItem(
    table: String!
    key: JSON!
    condition: String
    names: JSON
    values: JSON
    returnValues: ReturnValues = NONE
    returnValuesOnConditionCheckFailure: ReturnValuesOnConditionCheckFailure = NONE
    requestId: String
    "Idempotency (issue 6): a retry within 10 minutes takes effect at most once."
    clientRequestToken: String
  ): WritePayload!
  "Up to 25 puts and deletes across tables, as DynamoDB's BatchWriteItem."
  batchWriteItem(requests: [BatchWriteTableInput!]!): BatchWritePayload!
}

"""
What a change did to an item: PUT (created), UPDATE (changed), DELETE, TTL_DELETE (expired
and swept).
"""
enum ChangeKind {
  PUT
  UPDATE
  DELETE
  TTL_DELETE
}

"""
One change to one item, from a table's change stream (gateway/subscriptions/README.md).
"""
type ChangeEvent {
  table: String!
  kind: ChangeKind!
  "The item's key attributes."
  keys: JSON!
  "The item before the change; null when it did not exist."
  oldImage: JSON
  "The item after the change; null when it no longer exists."
  newImage: JSON
  "The table topic's partition and offset (int64 as a decimal string) of the change."
  partition: Int!
  offset: String!
  "The log record's timestamp, ms since the epoch, as a decimal string."
  timestampMs: String!
  """
  A session token: pass it as changes(after:) to resume right after this event, with no gap
  and no duplicate; also usable as a SESSION read token.
  """
  token: String!
}

type Subscription {
  """
  The table's item changes, in offset order per partition, with old and new images; over
  SSE (Accept: text/event-stream) and WebSocket (graphql-ws) at /graphql. after: a token
  from an earlier event resumes right after it (partitions it does not name start at offset
  0); omitted, only new changes. key: only that item's changes. Errors: NOT_FOUND (table),
  VALIDATION (bad key or token, or reason TRIMMED when the token is older than the kept
  changes), THROTTLED (retriable) with reason SUBSCRIPTIONS_MAX (too many open) or
  SUBSCRIBER_TOO_SLOW (fell behind the bounded buffer; extensions.token resumes).
  """
  changes(table: String!, key: JSON, after: String): ChangeEvent!
}

# ---- Transactions (issue 6, materializer/transactions/README.md) -------------------------

"""
One action of transactWriteItems: exactly one of put, update, delete or conditionCheck.
Conditions are checked when each partition applies the prepare, like single-item writes.
"""
input TransactWriteInput {
  put: TransactPutInput
  update: TransactUpdateInput
  delete: TransactDeleteInput
  conditionCheck: TransactConditionCheckInput
}

input TransactPutInput {
  table: String!
  item: JSON!
  condition: String
  names: JSON
  values: JSON
  returnValuesOnConditionCheckFailure: ReturnValuesOnConditionCheckFailure = NONE
}

input TransactUpdateInput {
  table: String!
  key: JSON!
  update: String!
  condition: String
  names: JSON
  values: JSON
  returnValuesOnConditionCheckFailure: ReturnValuesOnConditionCheckFailure = NONE
}

input TransactDeleteInput {
  table: String!
  key: JSON!
  condition: String
  names: JSON
  values: JSON
  returnValuesOnConditionCheckFailure: ReturnValuesOnConditionCheckFailure = NONE
}

input TransactConditionCheckInput {
  table: String!
  key: JSON!
  condition: String!
  names: JSON
  values: JSON
  returnValuesOnConditionCheckFailure: ReturnValuesOnConditionCheckFailure = NONE
}

type TransactWritePayload {
  "Session token of every partition the transaction committed on."
  token: String!
  "True when clientRequestToken named an earlier request and this is its first outcome."
  replayed: Boolean!
}

"One read of transactGetItems."
input TransactGetInput {
  table: String!
  key: JSON!
  projection: String
  names: JSON
}

type TransactGetPayload {
  "One entry per get, in order: the item, or null when absent."
  items: [JSON]!
  token: String!
}

extend type Query {
  """
  Up to 100 items across tables and partitions as one snapshot that never shows part of a
  transaction (STRONG: it also sees every write acknowledged before it). Errors:
  TRANSACTION_CONFLICT (retriable) when transactions kept holding the items past the wait
  limit; VALIDATION; NOT_FOUND.
  """
  transactGetItems(gets: [TransactGetInput!]!, after: String): TransactGetPayload!
}

# ---- Point-in-time restore and backups (issue 7; materializer/restore/README.md) ----

"Where a restore into a table stands. A table is served only once its restore is ACTIVE."
enum RestoreState {
  "Recorded; the target table is being created."
  CREATING
  "The target exists and its items are being appended; reads and writes of it are refused."
  RESTORING
  "Every item is durable in the target's log and applied: an ordinary table."
  ACTIVE
  "Stopped with an error (message); running the same restore again resumes it."
  FAILED
}

"What the node running a restore is doing (null on other nodes, or after a restart)."
enum RestorePhase {
  PREPARING
  "Fetching an S3 backup to the node."
  DOWNLOADING
  REPLAYING
  LOADING
  INDEXING
  DONE
}

type RestoreStatus {
  target: String!
  "The source table, or backup:<name> (this node's folder) or backup:s3://bucket/prefix/<name>."
  source: String!
  "The instant restored, ISO 8601, and as ms since the epoch (decimal string)."
  time: String!
  timeMs: String!
  state: RestoreState!
  phase: RestorePhase
  "Log events replayed so far, and in all (int64 as decimal strings)."
  eventsReplayed: String!
  eventsTotal: String!
  itemsWritten: Int!
  itemsTotal: Int!
  "The checkpoint or backup the replay started from; null: the start of the log."
  checkpoint: String
  message: String
  "Whether the node answering runs the job now."
  running: Boolean!
}

"A consistent snapshot of a table: every partition at a recorded offset."
type Backup {
  name: String!
  table: String!
  createdAt: String!
  items: Int!
  bytes: String!
  "Per partition, the table topic offset the backup reflects (everything below it)."
  offsets: [String!]!
  "Where it is: null for the node's backup folder, else s3://bucket/prefix."
  location: String
  "The node whose backup folder holds it (its --node-id); null on S3."
  node: String
  "false: in the folder of a node that is not running; restoring it is NOT_FOUND (extensions.backup UNAVAILABLE)."
  available: Boolean!
}

"How far back a table can be restored, and the log retention that keeps it so."
type RecoveryWindow {
  table: String!
  days: Float!
  "The table topic's retention.ms in force (-1: forever), as a decimal string."
  retentionMs: String!
}

extend type Query {
  recoveryWindow(table: String!): RecoveryWindow!
  "The restore into a table; null when there was none."
  restoreStatus(target: String!): RestoreStatus
  "Every restore the log records."
  restores: [RestoreStatus!]!
  """
  The backups of this node's backup folder, or under location (s3://bucket/prefix; S3
  errors: NOT_FOUND for a missing bucket, FORBIDDEN for refused credentials, TIMEOUT for
  an endpoint that does not answer, each with extensions.s3).
  """
  backups(location: String): [Backup!]!
}

extend type Mutation {
  """
  Up to 100 actions across tables and partitions, all-or-nothing and serializable.
  clientRequestToken (1 to 36 characters) makes retries take effect at most once within 10
  minutes and answer the first outcome; reusing it with a different request is VALIDATION
  (IdempotentParameterMismatch). Errors: TRANSACTION_CANCELED with
  extensions.cancellationReasons (one per action, in order: code None,
  ConditionalCheckFailed, TransactionConflict or ValidationError; message; item for
  ALL_OLD); VALIDATION; NOT_FOUND; TIMEOUT (retriable with the same token).
  """
  transactWriteItems(
    actions: [TransactWriteInput!]!
    clientRequestToken: String
  ): TransactWritePayload!
}

extend type Mutation {
  """
  Starts restoring source as it was at time (ISO 8601 or ms since the epoch: per partition,
  the events up to the first one stamped later) into a new table target, and returns at
  once; follow it with restoreStatus. Running an unfinished restore again resumes it.
  """
  restoreTable(source: String!, target: String!, time: String!): RestoreStatus!
  """
  Sets how far back the table can be restored (1..3650 days; default 35, the node's
  --recovery-window-days), recorded in the log; raises its topic's retention.ms to match.
  """
  setRecoveryWindow(table: String!, days: Int!): RecoveryWindow!
  """
  Writes a backup named backup of a table to the node's backup folder, or under to
  (s3://bucket/prefix: objects prefix/<backup>/items.bin and manifest.json, the manifest last).
  """
  backupTable(table: String!, backup: String!, to: String): Backup!
  "Deletes a backup of the node's folder, or of location (s3://bucket/prefix)."
  deleteBackup(backup: String!, location: String): Backup!
  """
  Starts restoring a backup (of the node's folder, or of location s3://bucket/prefix) into
  a new table; follow it with restoreStatus.
  """
  restoreTableFromBackup(backup: String!, target: String!, location: String): RestoreStatus!
}
`;
