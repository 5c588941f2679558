// The replay of a restore, in a worker thread: seeding the scratch store and applying the
// source's events are CPU-bound (Avro decoding, apply) and would otherwise share the node's
// event loop with live reads and writes. The worker builds the scratch store, replays, closes
// it and reports; the node then reads the items from the closed store (README.md).
//
// Messages to the parent: { replayed } every 100 ms, then { done, replayed }. An error
// rejects through the Worker's "error" event.
import { parentPort, workerData } from "node:worker_threads";
import { kafkaClient } from "../../services/shared/kafka-client.js";
import { assert } from "../../services/shared/assert.js";
import { ScratchTable, type ReplayWorkerInput } from "./replay.js";

assert(parentPort !== null, "replay-worker runs as a worker thread");
const port = parentPort;
const input = workerData as ReplayWorkerInput;
const kafka = kafkaClient({ brokers: input.brokers, tls: input.kafkaTls }, "logkv-restore");
const scratch = await ScratchTable.create(input.dir, input.entry, input.base);
const progress = { replayed: 0n };
const tick = setInterval(() => port.postMessage({ replayed: progress.replayed }), 100);
try {
  await scratch.replay(kafka, input.cut, input.timeMs, progress);
} finally {
  clearInterval(tick);
  await scratch.close();
}
port.postMessage({ done: true, replayed: progress.replayed });
