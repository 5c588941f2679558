// Goal (issues 6 and 8: "one write taking effect twice"): pin down the path by which a
// single append reached the log twice, and show the log client no longer takes it.
// The path is in kafkajs 2.2.4's producer (src/producer/sendMessages.js): a sendBatch whose
// partitions have different leaders sends one request per leader and waits with
// Promise.all. If leader X's request fails fast while leader Y's is still in flight, the
// retrier starts its next attempt at once and builds a SECOND request for Y (Y has no
// response yet). It waits on kafkajs's per-broker lock; once Y's first request succeeds,
// the partition's sequence has moved on, so the second request carries the same records
// with the next sequence numbers, and the broker must take them as new: the batch is in the
// log twice (the scale-out counter at 21 after 20 adds).
// Method: three real Raft brokers, each advertising a ProduceFaultProxy in front of its Kafka
// listener, so kafkajs reaches them only through the proxies. Two partitions with different
// leaders X and Y. One fault schedule for both tests: Y's next Produce is held in its proxy;
// X's next Produce is dropped with its connection (a fast, retriable failure); once X's
// retry has reached X, Y's held request is released. Then the partitions' end offsets show
// how many records each holds. A bare kafkajs sendBatch writes Y's partition twice (the
// hazard, so a kafkajs upgrade that fixes it shows up here); the AppendBatcher, which sends
// one partition per sendBatch, writes every append exactly once, at the offset it returned.
// The schedule is driven by the proxies' events, not by timing. A leader change in the
// middle (an election on a loaded machine) voids a round; the round is then run again.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Kafka, logLevel, Partitioners, type Admin, type Producer } from "kafkajs";
import { ClusterProcesses } from "../helpers/cluster-process.js";
import { AppendBatcher, type LogPosition } from "../../services/log-client.js";
import { ensureTopic } from "../../services/shared/kafka-client.js";

const TOPIC = "dup";
const PARTITIONS = 6;
const ROUNDS_MAX = 4;

describe("one append, written once: multi-leader sends and kafkajs retries", () => {
  let cluster: ClusterProcesses;
  let kafka: Kafka;
  let admin: Admin;
  /** Two partitions with different leaders, and a key that lands on each. */
  let x: { partition: number; leader: number; key: Buffer };
  let y: { partition: number; leader: number; key: Buffer };

  before(async () => {
    cluster = await ClusterProcesses.start(3, { kafkaProxies: true });
    kafka = new Kafka({
      clientId: "dup-test",
      brokers: cluster.proxiedAddresses(),
      logLevel: logLevel.NOTHING,
      retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 1000 },
    });
    admin = kafka.admin();
    await admin.connect();
    await ensureTopic(admin, TOPIC, PARTITIONS);
    // Metadata right after CreateTopics may name a leader hint, not the elected leader:
    // wait until every partition's named leader answers ListOffsets.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ok = await endsOf().then(
        () => true,
        () => false,
      );
      if (ok) break;
      assert.ok(Date.now() < deadline, "partition leaders elected");
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const leaders = await leadersOf();
    const first = [...leaders.keys()][0]!;
    const second = [...leaders.keys()].find((p) => leaders.get(p) !== leaders.get(first));
    assert.ok(second !== undefined, `partitions on two leaders: ${[...leaders]}`);
    const keyFor = (partition: number): Buffer => {
      const partitioner = Partitioners.DefaultPartitioner();
      const partitionMetadata = [...leaders].map(([partitionId, leader]) => ({
        partitionId,
        leader,
        replicas: [],
        isr: [],
        partitionErrorCode: 0,
      }));
      for (let i = 0; ; i++) {
        const key = Buffer.from(`key-${i}`);
        const p = partitioner({ topic: TOPIC, partitionMetadata, message: { key, value: null } });
        if (p === partition) return key;
      }
    };
    x = { partition: first, leader: leaders.get(first)!, key: keyFor(first) };
    y = { partition: second, leader: leaders.get(second)!, key: keyFor(second) };
  });

  after(async () => {
    await admin?.disconnect();
    await cluster?.destroy();
  });

  async function leadersOf(): Promise<Map<number, number>> {
    const metadata = await admin.fetchTopicMetadata({ topics: [TOPIC] });
    const leaders = new Map<number, number>();
    for (const p of metadata.topics[0]!.partitions) leaders.set(p.partitionId, p.leader);
    return new Map([...leaders].sort(([a], [b]) => a - b));
  }

  async function endsOf(): Promise<Map<number, number>> {
    const offsets = await admin.fetchTopicOffsets(TOPIC);
    return new Map(offsets.map((o) => [o.partition, Number(o.high)]));
  }

  /** An idempotent producer whose connections to X and Y are open and metadata loaded. */
  async function warmProducer(): Promise<Producer> {
    const producer = kafka.producer({ idempotent: true, allowAutoTopicCreation: false });
    await producer.connect();
    await producer.sendBatch({
      acks: -1,
      topicMessages: [
        {
          topic: TOPIC,
          messages: [
            { key: x.key, value: "warm", partition: x.partition },
            { key: y.key, value: "warm", partition: y.partition },
          ],
        },
      ],
    });
    return producer;
  }

  /**
   * Runs `send` under the fault schedule (see the file comment) and returns how many records
   * X's and Y's partitions gained, or null when the leaders moved meanwhile (void round).
   */
  async function underFaults<T>(
    send: () => Promise<T>,
  ): Promise<{ result: T; gained: { x: number; y: number } } | null> {
    const leadersBefore = await leadersOf();
    const before = await endsOf();
    const proxyX = cluster.kafkaProxy(x.leader);
    const proxyY = cluster.kafkaProxy(y.leader);
    const failedBefore = proxyX.failed;
    const forwardedBefore = proxyX.produces;
    proxyX.failNextProduce();
    const held = proxyY.holdNextProduce();
    const sending = send();
    // X's first Produce is dropped; its retry reaching X means the retry attempt is built.
    // If it never does (the leaders moved, so the retry went elsewhere), the round is void.
    const scheduled = await Promise.race([
      held.then(() => proxyX.producesReached(forwardedBefore + 1)).then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 20_000).unref()),
    ]);
    proxyX.cancel();
    proxyY.cancel();
    proxyY.release();
    const result = await sending;
    if (!scheduled) return null;
    assert.equal(proxyX.failed, failedBefore + 1, "X's first Produce was dropped");
    const after = await endsOf();
    const leadersAfter = await leadersOf();
    if (
      leadersAfter.get(x.partition) !== leadersBefore.get(x.partition) ||
      leadersAfter.get(y.partition) !== leadersBefore.get(y.partition) ||
      leadersBefore.get(x.partition) !== x.leader ||
      leadersBefore.get(y.partition) !== y.leader
    ) {
      return null;
    }
    return {
      result,
      gained: {
        x: after.get(x.partition)! - before.get(x.partition)!,
        y: after.get(y.partition)! - before.get(y.partition)!,
      },
    };
  }

  it(
    "kafkajs 2.2.4: a sendBatch over two leaders writes the slow leader's records twice",
    { timeout: 90_000 },
    async (t) => {
      const producer = await warmProducer();
      try {
        for (let round = 1; ; round++) {
          const outcome = await underFaults(() =>
            producer.sendBatch({
              acks: -1,
              topicMessages: [
                {
                  topic: TOPIC,
                  messages: [
                    { key: x.key, value: `x${round}`, partition: x.partition },
                    { key: y.key, value: `y${round}`, partition: y.partition },
                  ],
                },
              ],
            }),
          );
          if (outcome === null) {
            t.diagnostic(`round ${round}: leaders moved, run again`);
            assert.ok(round < ROUNDS_MAX, "leaders kept moving");
            continue;
          }
          t.diagnostic(`one record each sent; X gained ${outcome.gained.x}, Y ${outcome.gained.y}`);
          assert.equal(outcome.gained.x, 1, "X's record once (its retry reused its sequence)");
          assert.equal(
            outcome.gained.y,
            2,
            "Y's record twice: kafkajs re-sent it with a new sequence (if 1, kafkajs no longer " +
              "does: the one-partition-per-send workarounds may be revisited)",
          );
          break;
        }
      } finally {
        await producer.disconnect();
      }
    },
  );

  it(
    "the AppendBatcher writes each append once, at the offset it returned",
    { timeout: 90_000 },
    async (t) => {
      const producer = await warmProducer();
      const batcher = new AppendBatcher([producer], admin);
      const perPartition = 3;
      try {
        for (let round = 1; ; round++) {
          const outcome = await underFaults(() =>
            Promise.all(
              Array.from({ length: 2 * perPartition }, (_, i) =>
                batcher.append(TOPIC, i % 2 === 0 ? x.key : y.key, Buffer.from(`a${round}-${i}`)),
              ),
            ),
          );
          if (outcome === null) {
            t.diagnostic(`round ${round}: leaders moved, run again`);
            assert.ok(round < ROUNDS_MAX, "leaders kept moving");
            continue;
          }
          const positions: LogPosition[] = outcome.result;
          t.diagnostic(
            `${perPartition} appends each; X gained ${outcome.gained.x}, Y ${outcome.gained.y}`,
          );
          assert.equal(outcome.gained.x, perPartition, "X holds each append once");
          assert.equal(outcome.gained.y, perPartition, "Y holds each append once");
          const ends = await endsOf();
          for (const [side, partition] of [
            [0, x.partition],
            [1, y.partition],
          ] as const) {
            const offsets = positions
              .filter((_, i) => i % 2 === side)
              .map((p) => {
                assert.equal(p.partition, partition);
                return Number(p.offset);
              });
            const end = ends.get(partition)!;
            assert.deepEqual(
              offsets,
              [end - 3, end - 2, end - 1],
              `partition ${partition}: the appends' offsets are the records just written`,
            );
          }
          await checkRecords(positions, round);
          break;
        }
      } finally {
        await producer.disconnect();
      }
    },
  );

  /** Each returned position holds that append's value (read back with a consumer). */
  async function checkRecords(positions: LogPosition[], round: number): Promise<void> {
    const want = new Map(positions.map((p, i) => [`${p.partition}/${p.offset}`, `a${round}-${i}`]));
    const got = new Map<string, string>();
    const consumer = kafka.consumer({
      groupId: `dup-check-${round}`,
      allowAutoTopicCreation: false,
    });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
      const done = new Promise<void>((resolve) => {
        void consumer.run({
          eachMessage: async ({ partition, message }) => {
            const slot = `${partition}/${message.offset}`;
            if (want.has(slot)) got.set(slot, message.value?.toString() ?? "");
            if (got.size === want.size) resolve();
          },
        });
      });
      const timeout = new Promise<void>((resolve) => setTimeout(resolve, 30_000).unref());
      await Promise.race([done, timeout]);
    } finally {
      await consumer.disconnect();
    }
    assert.deepEqual(new Map([...got].sort()), new Map([...want].sort()));
  }
});
