// Goal: the `logkv` command behaves as the README says: `logkv start` brings up the
// embedded node and prints where it listens, metrics answer in Prometheus format and reflect
// traffic, SIGTERM and SIGINT stop it cleanly (exit 0) and the data survives a restart, a
// stop that hangs past its limit exits 1, and bad flags fail with a clear message instead
// of a stack trace.
// Method: spawn the compiled CLI as a child process on free loopback ports with a temporary
// data folder; talk to it with kafkajs and plain HTTP.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { BrokerProcess, cliPath } from "../helpers/broker-process.js";

async function metricsOf(url: string): Promise<string> {
  const response = await fetch(url);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /text\/plain/);
  return response.text();
}

function metricValue(text: string, name: string, labels: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  assert.ok(line !== undefined, `metric ${name}{${labels}} present`);
  return Number(line.split(" ").at(-1));
}

describe("logkv command line", () => {
  it("start prints its addresses, serves metrics, and stops cleanly on SIGTERM and SIGINT", async () => {
    const broker = new BrokerProcess({ extraArgs: ["--metrics", "127.0.0.1:0"] });
    await broker.launch();
    try {
      const kafka = new Kafka({ brokers: [broker.address], logLevel: logLevel.NOTHING });
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({
        topic: "metered",
        acks: -1,
        messages: [{ value: "a" }, { value: "b" }],
      });
      await producer.disconnect();
      const metricsUrl = broker.metricsUrl;
      assert.ok(metricsUrl !== null, "metrics address printed");
      const text = await metricsOf(metricsUrl);
      assert.equal(metricValue(text, "logkv_broker_messages_in_total", 'topic="metered"'), 2);
      assert.equal(
        metricValue(text, "logkv_broker_high_watermark", 'topic="metered",partition="0"'),
        2,
      );
      assert.match(text, /logkv_broker_request_seconds_bucket\{le="[^"]+",api="Produce"\}/);
      assert.match(text, /logkv_broker_fsync_seconds_count \d+/);
      assert.equal(await broker.stop(), 0, "SIGTERM exits 0");

      await broker.restart();
      const admin = new Kafka({ brokers: [broker.address], logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      const offsets = await admin.fetchTopicOffsets("metered");
      await admin.disconnect();
      assert.equal(offsets[0]!.high, "2", "records survive a clean restart");
      assert.equal(await broker.stop("SIGINT"), 0, "SIGINT exits 0");
    } finally {
      await broker.destroy();
    }
  });

  it("rejects bad flags with a clear message and exit code 1", () => {
    const unknown = spawnSync(process.execPath, [cliPath, "broker", "--bogus"], {
      encoding: "utf8",
    });
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /logkv: .*bogus/);
    const badListen = spawnSync(process.execPath, [cliPath, "broker", "--listen", "nope"], {
      encoding: "utf8",
    });
    assert.equal(badListen.status, 1);
    assert.match(badListen.stderr, /--listen wants HOST:PORT/);
    const badCommand = spawnSync(process.execPath, [cliPath, "frobnicate"], { encoding: "utf8" });
    assert.equal(badCommand.status, 2);
    assert.match(badCommand.stderr, /unknown command 'frobnicate'/);
  });

  it("a stop that hangs exits 1 after LOGKV_STOP_TIMEOUT_MS and says why", async () => {
    // A hung stop (a Raft apply waiting for a quorum that is gone, say) must not keep a
    // process alive after SIGTERM: a child whose stop never resolves, with a 300 ms limit.
    const module = new URL("../../services/shared/stop-signals.js", import.meta.url).href;
    const child = spawn(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const { onStopSignals } = await import(${JSON.stringify(module)});
         const { createLogger } = await import(${JSON.stringify(module.replace("stop-signals", "log"))});
         onStopSignals(createLogger("test"), () => new Promise(() => {}));
         setInterval(() => {}, 1000);
         console.log("ready");`,
      ],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOGKV_STOP_TIMEOUT_MS: "300" } },
    );
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
    const started = Date.now();
    child.kill("SIGTERM");
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    assert.equal(code, 1);
    assert.ok(Date.now() - started >= 250, "not before the limit");
    assert.match(stderr, /stop timed out/);
  });

  it("refuses to start on a port already in use, without a stack trace", async () => {
    const first = await BrokerProcess.start();
    const dataDir = mkdtempSync(join(tmpdir(), "logkv-cli-"));
    try {
      const second = spawn(
        process.execPath,
        [cliPath, "broker", "--data", dataDir, "--listen", first.address],
        {
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let stderr = "";
      second.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => second.on("exit", resolve));
      assert.equal(code, 1);
      assert.match(stderr, /EADDRINUSE/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      await first.destroy();
    }
  });
});
