// Goal: librdkafka's transactional producer (confluent-kafka 1.7 on librdkafka 2.0.2, and
// kcat on the same library) works against logkv: init_transactions, commit and abort,
// read_committed versus read_uncommitted consumers, send_offsets_to_transaction.
// Method: a real broker process; test/e2e/python/confluent_kafka_txn.py runs under Debian's
// /usr/bin/python3 and prints a JSON report that this test checks; then kcat reads the same
// topic at both isolation levels.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { CLIENT_ENV, runCommand } from "../helpers/run-command.js";
import { BrokerProcess, repoRoot } from "../helpers/broker-process.js";

const PYTHON = "/usr/bin/python3";
const SCRIPT = join(repoRoot, "test/e2e/python/confluent_kafka_txn.py");

const range = (prefix: string, n: number): string[] =>
  Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe("librdkafka transactions against a logkv broker", () => {
  let broker: BrokerProcess;

  before(async () => {
    broker = await BrokerProcess.start();
  });

  after(async () => {
    await broker.destroy();
  });

  it("confluent-kafka commits, aborts and sends offsets in a transaction", async () => {
    const result = await runCommand(PYTHON, [SCRIPT, "--bootstrap", broker.address], {
      timeoutMs: 60_000,
      env: CLIENT_ENV,
    });
    assert.equal(result.code, 0, `${result.stderr.slice(-4000)}\n${broker.stderr.slice(-4000)}`);
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
      const args = ["-b", broker.address, "-C", "-t", "ck-txn", "-e", "-q", "-f", "%s\\n"];
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
