// The produce cases of the log benchmark and how one is run: a fresh broker (own process,
// own temporary data folder), a one-partition topic, a warm-up outside the timed window, the
// timed load inside measureWindow, then the broker is killed and its folder deleted.
import { BenchBroker } from "./bench-broker.js";
import { KafkajsLoad, type LoadOutcome } from "./kafkajs-produce.js";
import { runKcatLoad, writeMessageFile } from "./kcat-produce.js";
import { measureWindow, type BrokerUsage } from "./run-window.js";
import { join } from "node:path";

export type ProduceClient = "kafkajs" | "kafkajs-batched" | "kcat";

export interface ProduceCase {
  client: ProduceClient;
  messageBytes: number;
  acks: 1 | -1;
  /** kafkajs producers, or kcat processes. */
  producers: number;
  /** Messages per send() call (kafkajs); 1 for the unbatched pattern. */
  batchSize: number;
}

export interface ProduceResult extends ProduceCase {
  name: string;
  messages: number;
  seconds: number;
  messagesPerSecond: number;
  /** Payload (message value) megabytes per second, 1 MB = 1e6 bytes. */
  mbPerSecond: number;
  errors: number;
  firstError: string | null;
  clientCpuSeconds: number;
  broker: BrokerUsage;
}

export interface CaseEnvironment {
  dataRoot: string;
  durationMs: number;
  /** Folder for kcat's message files and fsync traces (tmpfs when there is one). */
  scratchDir: string;
}

/** Payload bytes per kafkajs send in the batched variant (about 100 KB). */
const BATCH_PAYLOAD_BYTES = 100_000;
/** kcat message files hold at most this many bytes; runs are capped by it. */
const KCAT_FILE_BYTES_MAX = 320 * 1024 * 1024;
/** Enough for kcat's start-up (up to ~100 ms on a busy machine) to be a small part of the
 *  calibration time, which also warms the broker up. */
const KCAT_CALIBRATION_BYTES = 96 * 1024 * 1024;
const TOPIC = "bench";

export function caseName(c: ProduceCase): string {
  const size = c.messageBytes >= 1024 ? `${c.messageBytes / 1024}KB` : `${c.messageBytes}B`;
  const who = c.client === "kcat" ? `${c.producers}proc` : `${c.producers}prod`;
  const batch = c.client === "kafkajs-batched" ? `,batch${c.batchSize}` : "";
  return `${c.client} ${size} acks=${c.acks} ${who}${batch}`;
}

/** The full matrix: sizes x acks x (kafkajs 1/64, batched kafkajs 1/64, kcat 1/4). */
export function produceCases(sizes: number[]): ProduceCase[] {
  const cases: ProduceCase[] = [];
  for (const messageBytes of sizes) {
    for (const acks of [1, -1] as const) {
      const batchSize = Math.max(1, Math.floor(BATCH_PAYLOAD_BYTES / messageBytes));
      for (const producers of [1, 64]) {
        cases.push({ client: "kafkajs", messageBytes, acks, producers, batchSize: 1 });
      }
      for (const producers of [1, 64]) {
        cases.push({ client: "kafkajs-batched", messageBytes, acks, producers, batchSize });
      }
      for (const producers of [1, 4]) {
        cases.push({ client: "kcat", messageBytes, acks, producers, batchSize: 1 });
      }
    }
  }
  return cases;
}

export async function runProduceCase(c: ProduceCase, env: CaseEnvironment): Promise<ProduceResult> {
  const broker = await BenchBroker.start({ dataRoot: env.dataRoot, logFlush: "always" });
  try {
    await broker.createTopic(TOPIC);
    const window =
      c.client === "kcat"
        ? await runKcatCase(c, env, broker)
        : await runKafkajsCase(c, env, broker);
    const { body, seconds } = window;
    const messages = body.messages;
    return {
      ...c,
      name: caseName(c),
      messages,
      seconds,
      messagesPerSecond: messages / seconds,
      mbPerSecond: (messages * c.messageBytes) / seconds / 1e6,
      errors: body.errors,
      firstError: body.firstError ?? mismatch(messages, window.broker.messagesIn),
      clientCpuSeconds: window.clientCpuSeconds,
      broker: window.broker,
    };
  } finally {
    await broker.destroy();
  }
}

/** Acknowledged messages the broker did not count (or counted twice) are worth a note. */
function mismatch(acknowledged: number, appended: number): string | null {
  if (appended >= acknowledged) return null;
  return `broker appended ${appended} messages but clients saw ${acknowledged} acknowledged`;
}

async function runKafkajsCase(c: ProduceCase, env: CaseEnvironment, broker: BenchBroker) {
  const load = new KafkajsLoad({
    address: broker.address,
    topic: TOPIC,
    producers: c.producers,
    batchSize: c.batchSize,
    messageBytes: c.messageBytes,
    acks: c.acks,
  });
  await load.connect();
  try {
    return await measureWindow(broker, env.scratchDir, () => load.run(env.durationMs));
  } finally {
    await load.disconnect();
  }
}

/**
 * kcat sends a fixed count, so the count is sized from a short calibration run on the same
 * broker (which also warms it up) to last about durationMs, capped by the message file.
 */
async function runKcatCase(c: ProduceCase, env: CaseEnvironment, broker: BenchBroker) {
  const file = messageFile(env.scratchDir, c.messageBytes);
  const lineBytes = c.messageBytes + 1;
  const fileMessages = Math.floor(KCAT_FILE_BYTES_MAX / lineBytes);
  const calibrationMessages = Math.floor(KCAT_CALIBRATION_BYTES / lineBytes);
  const base = { address: broker.address, topic: TOPIC, acks: c.acks, file };
  const started = performance.now();
  const calibration = await runKcatLoad({
    ...base,
    processes: c.producers,
    messagesPerProcess: calibrationMessages,
  });
  if (calibration.errors > 0) throw new Error(`kcat calibration: ${calibration.firstError}`);
  const rate = calibration.messages / ((performance.now() - started) / 1000);
  const wanted = Math.ceil((rate * env.durationMs) / 1000 / c.producers);
  const messagesPerProcess = Math.max(calibrationMessages, Math.min(fileMessages, wanted));
  return measureWindow(broker, env.scratchDir, (): Promise<LoadOutcome> =>
    runKcatLoad({ ...base, processes: c.producers, messagesPerProcess }),
  );
}

const messageFiles = new Map<string, string>();

/** One message file per size per scratch folder, written once at the maximum length. */
function messageFile(scratchDir: string, messageBytes: number): string {
  const key = `${scratchDir}/${messageBytes}`;
  let path = messageFiles.get(key);
  if (path === undefined) {
    path = join(scratchDir, `messages-${messageBytes}.txt`);
    writeMessageFile(path, Math.floor(KCAT_FILE_BYTES_MAX / (messageBytes + 1)), messageBytes);
    messageFiles.set(key, path);
  }
  return path;
}
