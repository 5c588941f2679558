// The API keys logkv knows and the version ranges the broker advertises in ApiVersions.
//
// The ranges are chosen so that kafkajs 2.2.4, librdkafka 2.0.2 and kafka-python 2.0.2 all
// work (shared/kafka-protocol/README.md, "Recommended ApiVersions advertisement"). Every
// maximum is a non-flexible version except ApiVersions v3, which librdkafka sends first.
// Minimums are deliberately low: kafka-python sends fixed old versions, and librdkafka
// silently disables gzip/snappy/lz4 when Produce's minimum is above 0, so Produce advertises
// 0..7 although its handler rejects 0..2. The transaction APIs (24, 25, 26, 28) are
// advertised at the README's non-flexible versions; flexible versions (AddPartitionsToTxn v3,
// InitProducerId v2+, which librdkafka's KIP-360 epoch bump needs) are not served yet.

/** Kafka API keys by name (the subset with schemas in messages/, plus ControlledShutdown). */
export const ApiKey = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  ControlledShutdown: 7,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  DescribeGroups: 15,
  ListGroups: 16,
  ApiVersions: 18,
  CreateTopics: 19,
  DeleteTopics: 20,
  DeleteRecords: 21,
  InitProducerId: 22,
  AddPartitionsToTxn: 24,
  AddOffsetsToTxn: 25,
  EndTxn: 26,
  TxnOffsetCommit: 28,
  DescribeConfigs: 32,
  AlterConfigs: 33,
  CreatePartitions: 37,
  DeleteGroups: 42,
  AlterPartitionReassignments: 45,
  ListPartitionReassignments: 46,
} as const;

export type ApiKeyName = keyof typeof ApiKey;
export type ApiKeyValue = (typeof ApiKey)[ApiKeyName];

/** API key to its name, for logs and metrics. */
export const API_KEY_NAMES: ReadonlyMap<number, ApiKeyName> = new Map(
  (Object.entries(ApiKey) as [ApiKeyName, number][]).map(([name, key]) => [key, name]),
);

export interface AdvertisedApi {
  readonly apiKey: number;
  readonly minVersion: number;
  readonly maxVersion: number;
}

function api(apiKey: number, minVersion: number, maxVersion: number): AdvertisedApi {
  return Object.freeze({ apiKey, minVersion, maxVersion });
}

/** The ApiVersions table, in ascending api key order. */
export const ADVERTISED_APIS: readonly AdvertisedApi[] = Object.freeze([
  api(ApiKey.Produce, 0, 7),
  api(ApiKey.Fetch, 4, 11),
  api(ApiKey.ListOffsets, 1, 3),
  api(ApiKey.Metadata, 0, 6),
  api(ApiKey.OffsetCommit, 2, 5),
  api(ApiKey.OffsetFetch, 1, 5),
  api(ApiKey.FindCoordinator, 0, 2),
  api(ApiKey.JoinGroup, 0, 5),
  api(ApiKey.Heartbeat, 0, 3),
  api(ApiKey.LeaveGroup, 0, 3),
  api(ApiKey.SyncGroup, 0, 3),
  api(ApiKey.DescribeGroups, 0, 2),
  api(ApiKey.ListGroups, 0, 2),
  api(ApiKey.ApiVersions, 0, 3),
  api(ApiKey.CreateTopics, 0, 4),
  api(ApiKey.DeleteTopics, 0, 3),
  api(ApiKey.DeleteRecords, 0, 1),
  api(ApiKey.InitProducerId, 0, 1),
  api(ApiKey.AddPartitionsToTxn, 0, 1),
  api(ApiKey.AddOffsetsToTxn, 0, 1),
  api(ApiKey.EndTxn, 0, 1),
  api(ApiKey.TxnOffsetCommit, 0, 2),
  api(ApiKey.DescribeConfigs, 0, 2),
  api(ApiKey.AlterConfigs, 0, 1),
  api(ApiKey.CreatePartitions, 0, 1),
  api(ApiKey.DeleteGroups, 0, 1),
  // Flexible (v0 is the only version); used by `logkv reassign` and Kafka's admin tools.
  api(ApiKey.AlterPartitionReassignments, 0, 0),
  api(ApiKey.ListPartitionReassignments, 0, 0),
]);

const advertisedByKey = new Map(ADVERTISED_APIS.map((a) => [a.apiKey, a]));

/** The advertised range of an API, or undefined when not advertised. */
export function advertisedRange(apiKey: number): AdvertisedApi | undefined {
  return advertisedByKey.get(apiKey);
}

/** Whether the broker advertises this (api key, version). */
export function isSupported(apiKey: number, version: number): boolean {
  const a = advertisedByKey.get(apiKey);
  return a !== undefined && version >= a.minVersion && version <= a.maxVersion;
}

/** The name of an API key for logs and metrics ("Produce"), or "Unknown<key>". */
export function apiName(apiKey: number): string {
  return API_KEY_NAMES.get(apiKey) ?? `Unknown${apiKey}`;
}
