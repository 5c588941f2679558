// The one place logkv's services make a kafkajs client, so every part that talks to the log
// (gateway, materializer, restore worker, routing) reaches the same brokers the same way:
// plaintext, or SSL with a CA and optionally a client certificate (mutual TLS).
import { Kafka, logLevel, type Admin, type RetryOptions } from "kafkajs";
import { DbError } from "./errors.js";
import { loadClientTls, type TlsClientFiles } from "./tls.js";

export interface KafkaConnection {
  brokers: string[];
  /** security.protocol=SSL with these PEM files; absent: plaintext. */
  tls?: TlsClientFiles;
}

/** A kafkajs client; TLS files are read (and checked) now, so a bad file fails early. */
export function kafkaClient(
  connection: KafkaConnection,
  clientId: string,
  retry: RetryOptions = { retries: 10, initialRetryTime: 100 },
): Kafka {
  return new Kafka({
    clientId,
    brokers: connection.brokers,
    logLevel: logLevel.NOTHING,
    retry,
    ...(connection.tls === undefined ? {} : { ssl: loadClientTls(connection.tls) }),
  });
}

/**
 * Creates `topic` with `partitions` partitions unless it exists, waits until every partition
 * has a leader, and checks the count: a table's partitions are named in the catalog, and a
 * topic made with another count (our clients never auto-create one, a user's tool may)
 * would send items to partitions the owners do not expect. Another client's create of the
 * same topic may still be under way when ours is answered "already exists", so the wait
 * does not rely on createTopics' own.
 */
export async function ensureTopic(
  admin: Admin,
  topic: string,
  partitions: number,
  timeoutMs = 30_000,
): Promise<void> {
  await admin.createTopics({
    topics: [{ topic, numPartitions: partitions }],
    waitForLeaders: true,
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await admin.fetchTopicMetadata({ topics: [topic] }).then(
      (metadata) => metadata.topics[0]?.partitions ?? [],
      (error: unknown) => {
        if ((error as { retriable?: boolean }).retriable === true) return [];
        throw error;
      },
    );
    if (found.length > 0 && found.every((p) => p.leader >= 0)) {
      if (found.length === partitions) return;
      throw new DbError(
        "INVALID_CONFIG",
        `topic ${topic} has ${found.length} partitions where ${partitions} are expected`,
      );
    }
    if (Date.now() >= deadline) {
      throw new DbError("TIMEOUT", `topic ${topic} has no leaders after ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
