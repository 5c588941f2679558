// Keeping a table's log for its recovery window (README.md, "Recovery window and log
// retention"): the table topic's retention.ms must cover the window plus the age of the
// newest checkpoint before the window start (at most one checkpoint interval), or a restore
// to the window start would find neither a checkpoint nor the log after it. Set as a topic
// config, so it works the same on the in-house broker and on Kafka.
import kafkajs, { type Admin } from "kafkajs";

// kafkajs is CommonJS: its enums are reached through the default export.
const { ConfigResourceTypes } = kafkajs;

export const RETENTION_MS = "retention.ms";

/** retention.ms a table with this window and checkpoint interval needs at least. */
export function requiredRetentionMs(windowMs: number, checkpointIntervalMs: number): number {
  const slackMs = Math.max(2 * checkpointIntervalMs, 3600_000);
  return windowMs + slackMs;
}

/**
 * Raises the topic's retention.ms to `requiredMs` unless it keeps records at least that
 * long already (or forever, -1). Returns the retention.ms in force afterwards.
 */
export async function ensureTopicRetention(
  admin: Admin,
  topic: string,
  requiredMs: number,
): Promise<number> {
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
  });
  const entries = described.resources[0]?.configEntries ?? [];
  const current = Number(entries.find((e) => e.configName === RETENTION_MS)?.configValue ?? -1);
  if (current < 0 || current >= requiredMs) return current;
  // AlterConfigs replaces a topic's overrides: carry the other overridden ones over.
  const kept = entries
    .filter((e) => !e.isDefault && e.configName !== RETENTION_MS)
    .map((e) => ({ name: e.configName, value: e.configValue }));
  await admin.alterConfigs({
    validateOnly: false,
    resources: [
      {
        type: ConfigResourceTypes.TOPIC,
        name: topic,
        configEntries: [...kept, { name: RETENTION_MS, value: String(requiredMs) }],
      },
    ],
  });
  return requiredMs;
}

/** The topic's retention.ms as the broker reports it. */
export async function topicRetentionMs(admin: Admin, topic: string): Promise<number> {
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: [RETENTION_MS] }],
  });
  const entry = described.resources[0]?.configEntries.find((e) => e.configName === RETENTION_MS);
  return Number(entry?.configValue ?? -1);
}
