// Produce-to-consume latency through the broker: one kafkajs producer sends at a steady
// rate (each message its own send() call, not awaited before the next, so the rate holds
// whatever the acknowledgement time) and stamps the send time into the value; one kafkajs
// consumer in a group long-polls (minBytes 1) and records now - stamp per message. Both are in
// this process, so both stamps come from one monotonic clock. With log flush "always" a
// record becomes visible to consumers only once fsynced, so this includes the group commit.
// The producer's acknowledgement latency is recorded too.
//
// The consumer must be assigned and fetching before the clock starts: a probe message is sent
// and awaited first.
import { Kafka, logLevel } from "kafkajs";
import { sleep, summarize } from "./stats.js";

export interface LatencyOptions {
  address: string;
  topic: string;
  ratePerSecond: number;
  durationMs: number;
  messageBytes: number;
  acks: 1 | -1;
}

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

export interface LatencyOutcome {
  sent: number;
  received: number;
  endToEnd: LatencySummary;
  ack: LatencySummary;
  errors: number;
}

const PROBE = "probe";
/** How long to wait for the last messages to arrive after the producer stops. */
const DRAIN_MS = 10_000;

function toSummary(samples: number[]): LatencySummary {
  const s = summarize(samples);
  return { count: s.count, p50Ms: s.p50, p99Ms: s.p99, p999Ms: s.p999, maxMs: s.max };
}

function stampedValue(messageBytes: number): Buffer {
  const stamp = performance.now().toFixed(3);
  return Buffer.from(stamp.padEnd(Math.max(messageBytes, stamp.length + 1), " "));
}

export async function runLatency(options: LatencyOptions): Promise<LatencyOutcome> {
  const kafka = new Kafka({
    clientId: "logkv-bench-latency",
    brokers: [options.address],
    logLevel: logLevel.NOTHING,
  });
  const consumer = kafka.consumer({
    groupId: "logkv-bench-latency",
    minBytes: 1,
    maxWaitTimeInMs: 1000,
  });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  const endToEnd: number[] = [];
  let probeSeen: () => void = () => undefined;
  const probeArrived = new Promise<void>((resolve) => (probeSeen = resolve));
  await Promise.all([consumer.connect(), producer.connect()]);
  try {
    await consumer.subscribe({ topic: options.topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const received = performance.now();
        const text = message.value?.toString() ?? "";
        if (text === PROBE) probeSeen();
        else endToEnd.push(received - Number.parseFloat(text));
      },
    });
    await producer.send({ topic: options.topic, acks: options.acks, messages: [{ value: PROBE }] });
    await probeArrived;
    const sent = await produceSteadily(producer, options);
    const drainDeadline = performance.now() + DRAIN_MS;
    while (endToEnd.length < sent.count && performance.now() < drainDeadline) await sleep(10);
    return {
      sent: sent.count,
      received: endToEnd.length,
      endToEnd: toSummary(endToEnd),
      ack: toSummary(sent.ackMs),
      errors: sent.errors,
    };
  } finally {
    await Promise.allSettled([consumer.disconnect(), producer.disconnect()]);
  }
}

async function produceSteadily(
  producer: ReturnType<Kafka["producer"]>,
  options: LatencyOptions,
): Promise<{ count: number; ackMs: number[]; errors: number }> {
  const ackMs: number[] = [];
  const inFlight = new Set<Promise<void>>();
  let count = 0;
  let errors = 0;
  const started = performance.now();
  for (;;) {
    const elapsed = performance.now() - started;
    if (elapsed >= options.durationMs) break;
    const due = Math.floor((elapsed * options.ratePerSecond) / 1000) - count;
    for (let i = 0; i < due; i++) {
      const sentAt = performance.now();
      const send = producer
        .send({
          topic: options.topic,
          acks: options.acks,
          messages: [{ value: stampedValue(options.messageBytes) }],
        })
        .then(
          () => void ackMs.push(performance.now() - sentAt),
          () => void errors++,
        )
        .finally(() => inFlight.delete(send));
      inFlight.add(send);
      count++;
    }
    await sleep(1);
  }
  await Promise.all(inFlight);
  return { count: count - errors, ackMs, errors };
}
