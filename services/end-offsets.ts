// End offsets for STRONG reads: each partition's committed end (the high watermark) as its
// leader reports it now, in one ListOffsets round trip per leader, shared by every read
// that arrived before the request went out.
//
// Correctness of sharing: a STRONG read must see every write acknowledged before it
// started, so it may only use an answer to a request *sent after it arrived*. A read that
// arrives while a request is in flight therefore waits for the next round, which carries
// every topic asked for meanwhile. At most one round is in flight and one is forming: under
// load, thousands of reads per second cost a few hundred ListOffsets requests, each read
// waits at most two round trips, and no answer is ever reused across time.
//
// Still over kafkajs (ARCHITECTURE.md principle 4): its public admin API takes two round
// trips (latest, then earliest offsets) for each call, so this drives the kafkajs cluster
// object the admin client is built on, which does leader lookup, metadata refresh,
// connections, TLS and SASL as every other kafkajs client of this process. That object is
// reached through kafkajs's private factory; kafkajs 2.2.4 is its final release, and
// test/services/end-offsets.test.ts fails at once if the factory ever moves.
import type { Kafka } from "kafkajs";
import { DbError } from "./shared/errors.js";

/** The part of kafkajs's internal Cluster this module uses. */
interface KafkajsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  refreshMetadata(): Promise<void>;
  refreshMetadataIfNecessary(): Promise<void>;
  findTopicPartitionMetadata(topic: string): { partitionId: number }[];
  fetchTopicsOffset(
    topics: { topic: string; fromBeginning: boolean; partitions: { partition: number }[] }[],
  ): Promise<{ topic: string; partitions: { partition: number; offset: string }[] }[]>;
}

type ClusterFactory = (options: {
  metadataMaxAge?: number;
  allowAutoTopicCreation?: boolean;
  isolationLevel?: number;
}) => KafkajsCluster;

/** kafkajs's cluster factory, found by its symbol's description. */
export function kafkajsClusterFactory(kafka: Kafka): ClusterFactory {
  const symbol = Object.getOwnPropertySymbols(kafka).find(
    (s) => s.description === "private:Kafka:createCluster",
  );
  const factory =
    symbol === undefined ? undefined : (kafka as unknown as Record<symbol, unknown>)[symbol];
  if (typeof factory !== "function") {
    throw new DbError("INTERNAL", "this kafkajs version has no cluster factory; pin kafkajs 2.2.x");
  }
  return factory as ClusterFactory;
}

/** Errors after which fresh metadata (a new leader, a new topic) may help. */
const RETRIABLE = new Set([
  "NOT_LEADER_FOR_PARTITION",
  "NOT_LEADER_OR_FOLLOWER",
  "LEADER_NOT_AVAILABLE",
  "UNKNOWN_TOPIC_OR_PARTITION",
  "FENCED_LEADER_EPOCH",
  "UNKNOWN_LEADER_EPOCH",
  "OFFSET_NOT_AVAILABLE",
]);

export const endOffsetLimits = {
  /** Attempts of one round before its readers get the error. */
  attemptsMax: 4,
  /** Pause before a retry, doubled each time. */
  retryBackoffMs: 50,
} as const;

interface Round {
  topics: Set<string>;
  /** Its request went out (its topics were read): later callers need the next round. */
  sent: boolean;
  promise: Promise<Map<string, bigint[]>>;
  resolve(result: Map<string, bigint[]>): void;
  reject(error: unknown): void;
}

export interface EndOffsetStats {
  /** endOffsets() calls. */
  calls: number;
  /** Rounds sent (each: one ListOffsets request per leader). */
  rounds: number;
}

/** One ListOffsets round: the end offsets of these topics, asked now. */
export type FetchEnds = (topics: string[]) => Promise<Map<string, bigint[]>>;

export class EndOffsetReader {
  private inFlight: Round | null = null;
  private forming: Round | null = null;
  readonly stats: EndOffsetStats = { calls: 0, rounds: 0 };

  constructor(
    private readonly fetchEnds: FetchEnds,
    private readonly onClose: () => Promise<void> = async () => undefined,
  ) {}

  /** A reader over a kafkajs client's brokers. */
  static forKafka(kafka: Kafka): EndOffsetReader {
    const cluster = kafkajsClusterFactory(kafka)({ allowAutoTopicCreation: false });
    let connected: Promise<void> | null = null;
    return new EndOffsetReader(
      async (topics) => {
        connected ??= cluster.connect();
        await connected;
        return fetchFromCluster(cluster, topics);
      },
      async () => {
        if (connected !== null) await cluster.disconnect();
      },
    );
  }

  /** Each partition's end offset, from a request sent after this call. */
  async endOffsets(topic: string): Promise<bigint[]> {
    this.stats.calls++;
    let round: Round;
    if (this.inFlight === null) round = this.start(newRound());
    else if (!this.inFlight.sent) round = this.inFlight;
    else round = this.forming ??= newRound();
    round.topics.add(topic);
    const result = await round.promise;
    const ends = result.get(topic);
    if (ends === undefined) throw new DbError("INTERNAL", `no end offsets for ${topic}`);
    return ends;
  }

  private start(round: Round): Round {
    this.inFlight = round;
    // The topics are read when the round runs: callers in this same tick join it.
    queueMicrotask(() => {
      round.sent = true;
      this.stats.rounds++;
      this.fetchEnds([...round.topics])
        .then(round.resolve, round.reject)
        .finally(() => {
          this.inFlight = null;
          const next = this.forming;
          this.forming = null;
          if (next !== null) this.start(next);
        });
    });
    return round;
  }

  close(): Promise<void> {
    return this.onClose();
  }
}

async function fetchFromCluster(
  cluster: KafkajsCluster,
  topics: string[],
): Promise<Map<string, bigint[]>> {
  for (let attempt = 1; ; attempt++) {
    try {
      for (const topic of topics) await cluster.addTargetTopic(topic);
      await cluster.refreshMetadataIfNecessary();
      const answer = await cluster.fetchTopicsOffset(
        topics.map((topic) => ({
          topic,
          fromBeginning: false,
          partitions: cluster
            .findTopicPartitionMetadata(topic)
            .map((p) => ({ partition: p.partitionId })),
        })),
      );
      const result = new Map<string, bigint[]>();
      for (const { topic, partitions } of answer) {
        const ends: bigint[] = [];
        for (const { partition, offset } of partitions) ends[partition] = BigInt(offset);
        result.set(topic, ends);
      }
      return result;
    } catch (error) {
      const type = (error as { type?: unknown }).type;
      if (attempt >= endOffsetLimits.attemptsMax || !RETRIABLE.has(String(type))) throw error;
      await new Promise((r) => setTimeout(r, endOffsetLimits.retryBackoffMs * 2 ** attempt));
      await cluster.refreshMetadata().catch(() => undefined);
    }
  }
}

function newRound(): Round {
  let resolve!: Round["resolve"];
  let reject!: Round["reject"];
  const promise = new Promise<Map<string, bigint[]>>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A round nobody awaits any more must not become an unhandled rejection.
  promise.catch(() => undefined);
  return { topics: new Set(), sent: false, promise, resolve, reject };
}
