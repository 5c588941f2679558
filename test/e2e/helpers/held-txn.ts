// A transaction held open between its prepares and its commit, written by hand with kafkajs
// in the coordinator's order (materializer/transactions/README.md, "Coordinator"): BEGIN on
// logkv.txn-state, one prepare per action (each its own participant, on its item's
// partition), and, when the test says so, the COMMIT decision and the commit records. Tests
// use it to put something (an updateTable) between the two phases.
import { Kafka, logLevel } from "kafkajs";
import { partitionOf } from "../../../gateway/consistency/partition.js";
import {
  encodeTxnRecord,
  encodeTxnState,
  type TopicPartition,
  type TxnAction,
} from "../../../schemas/transactions.js";
import { prepare } from "../../materializer/transactions/builders.js";

export interface HeldTransaction {
  /** Appends the COMMIT decision, then a commit record to every participant. */
  commit(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Prepares `actions` (each keyed by its table's partition key `pkName`) on table `table`
 * of `partitions` partitions, through the broker at `broker`. Resolves once the prepares are
 * appended (not yet applied: the caller checks the holds).
 */
export async function holdTransaction(options: {
  broker: string;
  txnId: string;
  table: string;
  pkName: string;
  partitions: number;
  actions: TxnAction[];
  deadlineMs?: bigint;
}): Promise<HeldTransaction> {
  const kafka = new Kafka({ brokers: [options.broker], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const producer = kafka.producer();
  await Promise.all([admin.connect(), producer.connect()]);
  const prefix = `logkv.table.${options.table}.`;
  const topic = (await admin.listTopics()).find((t) => t.startsWith(prefix));
  if (topic === undefined) throw new Error(`no topic for table ${options.table}`);
  const deadlineMs = options.deadlineMs ?? BigInt(Date.now() + 60_000);
  const participants: TopicPartition[] = options.actions.map((action) => ({
    topic,
    partition: partitionOf(action.item[options.pkName]!, options.partitions),
  }));
  const state = async (kind: "BEGIN" | "COMMIT") => {
    const value = encodeTxnState({
      txnId: options.txnId,
      kind,
      deadlineMs,
      participants,
      token: null,
      digest: null,
      reasons: [],
    });
    const messages = [{ key: options.txnId, value }];
    await producer.send({ topic: "logkv.txn-state", acks: -1, messages });
  };
  const toEach = async (record: (i: number) => Buffer) => {
    for (const [i, { partition }] of participants.entries()) {
      await producer.send({ topic, acks: -1, messages: [{ partition, value: record(i) }] });
    }
  };
  await state("BEGIN");
  await toEach((i) =>
    encodeTxnRecord(
      prepare(`${options.txnId}#${i}`, [options.actions[i]!], deadlineMs, participants),
    ),
  );
  return {
    async commit() {
      await state("COMMIT");
      await toEach((i) =>
        encodeTxnRecord({ type: "TxnCommit", txnId: `${options.txnId}#${i}`, deadlineMs }),
      );
    },
    async close() {
      await Promise.all([admin.disconnect(), producer.disconnect()]);
    },
  };
}
