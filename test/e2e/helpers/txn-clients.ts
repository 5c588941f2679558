// Shared helpers of the transaction end-to-end tests: a kafkajs client with quick retries,
// and a reader that consumes a topic from the beginning at a given isolation level until a
// predicate over what it has read holds.
import { Kafka, logLevel, type KafkaConfig } from "kafkajs";

export function kafkaFor(address: string, overrides: Partial<KafkaConfig> = {}): Kafka {
  return new Kafka({
    clientId: "txn-e2e",
    brokers: [address],
    logLevel: logLevel.NOTHING,
    retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 },
    ...overrides,
  });
}

export interface ReadRecord {
  partition: number;
  offset: string;
  key: string;
  value: string;
}

let readers = 0;

/**
 * Reads `topic` from the beginning with a fresh consumer group until `done(records)` holds,
 * then waits `settleMs` more (so records that should not be there get a chance to appear).
 * Rejects after timeoutMs with what was read so far.
 */
export async function readTopic(
  kafka: Kafka,
  topic: string,
  options: {
    readUncommitted: boolean;
    done: (records: ReadRecord[]) => boolean;
    settleMs?: number;
    timeoutMs?: number;
  },
): Promise<ReadRecord[]> {
  readers += 1;
  const consumer = kafka.consumer({
    groupId: `reader-${process.pid}-${readers}-${Date.now()}`,
    readUncommitted: options.readUncommitted,
    maxWaitTimeInMs: 100,
  });
  const records: ReadRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let wake: () => void = () => {};
    const reached = new Promise<void>((resolve) => (wake = resolve));
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        records.push({
          partition,
          offset: message.offset,
          key: message.key?.toString() ?? "",
          value: message.value?.toString() ?? "",
        });
        if (options.done(records)) wake();
      },
    });
    const timeoutMs = options.timeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const outcome = await Promise.race([reached.then(() => "ok" as const), timedOut]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      throw new Error(`read of ${topic} timed out with ${records.length} records`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.settleMs ?? 1000));
    return [...records];
  } finally {
    await consumer.disconnect();
  }
}

/** The Prometheus sample value of a metric line with the given labels, or 0. */
export async function metricValue(
  metricsUrl: string,
  name: string,
  labels: string,
): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}{${labels}}`) || (labels === "" && line.startsWith(`${name} `))) {
      return Number(line.split(" ").pop());
    }
  }
  return 0;
}
