// Goal (issue 6 on the cluster): librdkafka's transactional producer (confluent-kafka on
// Debian's librdkafka, and kcat on the same library) works against a three-broker Raft
// cluster as against one broker: init_transactions, commit and abort, read_committed versus
// read_uncommitted consumers, send_offsets_to_transaction.
// Method: the single-node check's script, test/e2e/python/confluent_kafka_txn.py, runs
// under /usr/bin/python3 with all three brokers as bootstrap servers and prints a JSON
// report; then kcat reads the same topic at both isolation levels from the cluster.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { CLIENT_ENV, runCommand } from "../helpers/run-command.js";
import { repoRoot } from "../helpers/broker-process.js";
import { ClusterProcesses } from "../helpers/cluster-process.js";

const PYTHON = "/usr/bin/python3";
const SCRIPT = join(repoRoot, "test/e2e/python/confluent_kafka_txn.py");

const range = (prefix: string, n: number): string[] =>
  Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe("librdkafka transactions against a logkv Raft cluster", () => {
  let cluster: ClusterProcesses;
  let bootstrap = "";

  before(async () => {
    cluster = await ClusterProcesses.start(3);
    bootstrap = cluster.addresses().join(",");
  });

  after(async () => {
    await cluster.destroy();
  });

  it("confluent-kafka commits, aborts and sends offsets in a transaction", async () => {
    const result = await runCommand(
      PYTHON,
      [SCRIPT, "--bootstrap", bootstrap, "--replication-factor", "3"],
      { timeoutMs: 90_000, env: CLIENT_ENV },
    );
    const brokerLogs = cluster.brokers.map((b) => b.stderr.slice(-2000)).join("\n");
    assert.equal(result.code, 0, `${result.stderr.slice(-4000)}\n${brokerLogs}`);
    const report = JSON.parse(result.stdout) as {
      read_committed: string[];
      read_uncommitted: string[];
      positions: [number, number][];
      committed: [number, number][];
      transformed: string[];
    };
    const committed = [...range("committed-", 20), "sentinel"].sort();
    assert.deepEqual(report.read_committed, committed);
    assert.deepEqual(report.read_uncommitted, [...committed, ...range("aborted-", 20)].sort());
    assert.deepEqual(report.committed, report.positions);
    assert.deepEqual(report.transformed, committed.map((v) => `T(${v})`).sort());
  });

  it("kcat reads only committed records with isolation.level=read_committed", async () => {
    const read = async (isolation: string): Promise<string[]> => {
      const args = ["-b", bootstrap, "-C", "-t", "ck-txn", "-e", "-q", "-f", "%s\\n"];
      const result = await runCommand("kcat", [...args, "-X", `isolation.level=${isolation}`], {
        timeoutMs: 30_000,
        env: CLIENT_ENV,
      });
      assert.equal(result.code, 0, result.stderr);
      return result.stdout
        .split("\n")
        .filter((line) => line !== "")
        .sort();
    };
    const committed = [...range("committed-", 20), "sentinel"].sort();
    assert.deepEqual(await read("read_committed"), committed);
    assert.deepEqual(
      await read("read_uncommitted"),
      [...committed, ...range("aborted-", 20)].sort(),
    );
  });
});
