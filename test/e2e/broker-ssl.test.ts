// Goal: the broker's Kafka listener speaks SSL when given a certificate (issue 8, TLS), to
// the three client families users run: kafkajs, librdkafka (kcat) and kafka-python; a
// plaintext client or a client that does not trust the certificate gets no Kafka service
// and the broker keeps serving; with --ssl-client-ca only clients presenting a certificate
// signed by that CA get in (mutual TLS); SIGHUP loads a renewed certificate; `logkv start`
// with SSL runs its own gateway and materializer over SSL; a bad certificate fails start.
// Method: openssl makes a CA and certificates in a temp folder; `logkv broker` and `logkv
// start` run as real processes on free loopback ports; each client runs for real (kcat and
// /usr/bin/python3 as child processes), each run bounded by a timeout.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect as connectTcp } from "node:net";
import { connect as connectTls } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { BrokerProcess, cliPath } from "../helpers/broker-process.js";
import { makeCa, makeSigned, type PemPair } from "../helpers/certificates.js";
import { NodeProcess } from "../helpers/node-process.js";
import { runCommand } from "../helpers/run-command.js";

const PYTHON = "/usr/bin/python3";

function kafkaClient(broker: string, ssl: object | undefined, clientId = "ssl-test"): Kafka {
  return new Kafka({
    clientId,
    brokers: [broker],
    logLevel: logLevel.NOTHING,
    ssl: ssl as never,
    retry: { retries: 2, initialRetryTime: 100 },
    connectionTimeout: 3000,
  });
}

/** Produces `values` to topic and reads them back with a fresh consumer group. */
async function roundTrip(kafka: Kafka, topic: string, values: string[]): Promise<string[]> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: values.map((value) => ({ value })) });
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: `g-${topic}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${seen.length}`)), 20_000);
    void consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message.value!.toString());
        if (seen.length >= values.length) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  return seen;
}

/** The subject CN of the certificate the listener presents. */
function presentedName(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host: "127.0.0.1", port, ca: readFileSync(ca) }, () => {
      const subject = socket.getPeerX509Certificate()?.subject ?? "";
      socket.end();
      resolve(/CN=([^\n]+)/.exec(subject)?.[1] ?? "");
    });
    socket.on("error", reject);
  });
}

/** Sends a plaintext ApiVersions request; resolves with how the connection ended. */
function plaintextApiVersions(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connectTcp({ host: "127.0.0.1", port });
    const clientId = Buffer.from("plain");
    const body = Buffer.alloc(2 + 2 + 4 + 2 + clientId.length);
    body.writeInt16BE(18, 0); // ApiVersions
    body.writeInt16BE(0, 2);
    body.writeInt32BE(1, 4);
    body.writeInt16BE(clientId.length, 8);
    clientId.copy(body, 10);
    const frame = Buffer.alloc(4 + body.length);
    frame.writeInt32BE(body.length, 0);
    body.copy(frame, 4);
    let received = Buffer.alloc(0);
    socket.on("connect", () => socket.write(frame));
    socket.on("data", (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      // A Kafka answer starts with a length and our correlation id 1; a TLS alert does not.
      const kafka = received.length >= 8 && received.readInt32BE(4) === 1;
      resolve(kafka ? "kafka answer" : "closed without a Kafka answer");
    });
    setTimeout(() => socket.destroy(), 5000).unref();
  });
}

async function metric(url: string, name: string): Promise<number> {
  const text = await fetch(url).then((r) => r.text());
  let total = 0;
  for (const line of text.split("\n"))
    if (line.startsWith(name)) total += Number(line.split(" ")[1]);
  return total;
}

describe("broker SSL listener", () => {
  let dir: string;
  let ca: PemPair;
  let server: PemPair;
  let broker: BrokerProcess;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "logkv-ssl-"));
    ca = makeCa(dir);
    server = makeSigned(dir, ca, "broker-1", "server");
  });
  after(async () => {
    await broker?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves kafkajs, kcat and kafka-python over SSL and refuses plaintext", async () => {
    broker = await BrokerProcess.start({
      extraArgs: ["--ssl-cert", server.cert, "--ssl-key", server.key, "--metrics", "127.0.0.1:0"],
    });
    const values = Array.from({ length: 50 }, (_, i) => `v${i}`);
    const got = await roundTrip(
      kafkaClient(broker.address, { ca: [readFileSync(ca.cert)] }),
      "s1",
      values,
    );
    assert.deepEqual(got, values);

    const kcatSsl = ["-X", "security.protocol=ssl", "-X", `ssl.ca.location=${ca.cert}`];
    const produced = await runCommand(
      "kcat",
      ["-b", broker.address, ...kcatSsl, "-P", "-t", "s2"],
      {
        input: "a\nb\nc\n",
      },
    );
    assert.equal(produced.code, 0, produced.stderr);
    const consumed = await runCommand("kcat", [
      "-b",
      broker.address,
      ...kcatSsl,
      "-C",
      "-t",
      "s2",
      "-o",
      "beginning",
      "-e",
      "-q",
    ]);
    assert.equal(consumed.code, 0, consumed.stderr);
    assert.deepEqual(consumed.stdout.trim().split("\n"), ["a", "b", "c"]);

    const script = `
import sys
from kafka import KafkaProducer, KafkaConsumer
args = dict(bootstrap_servers="${broker.address}", security_protocol="SSL", ssl_cafile="${ca.cert}")
p = KafkaProducer(acks="all", **args)
for i in range(5): p.send("s3", ("py%d" % i).encode()).get(timeout=10)
p.flush(); p.close()
c = KafkaConsumer("s3", auto_offset_reset="earliest", consumer_timeout_ms=5000, **args)
print(",".join(m.value.decode() for m in c)); c.close()
`;
    const python = await runCommand(PYTHON, ["-c", script], { timeoutMs: 60_000 });
    assert.equal(python.code, 0, python.stderr);
    assert.equal(python.stdout.trim(), "py0,py1,py2,py3,py4");

    // Plaintext to an SSL listener: no Kafka answer, counted, and the broker carries on.
    assert.equal(await plaintextApiVersions(broker.port), "closed without a Kafka answer");
    const untrusting = kafkaClient(broker.address, { ca: [readFileSync(server.cert)] }, "bad-ca");
    const admin = untrusting.admin();
    await assert.rejects(admin.connect());
    await admin.disconnect().catch(() => undefined);
    assert.ok(
      (await metric(broker.metricsUrl!, `logkv_broker_connections_closed_total{reason="tls_`)) >= 1,
      "failed handshakes are counted",
    );
    const again = await roundTrip(
      kafkaClient(broker.address, { ca: [readFileSync(ca.cert)] }),
      "s4",
      ["x"],
    );
    assert.deepEqual(again, ["x"]);
  });

  it("reloads a renewed certificate on SIGHUP and keeps the old one when the new is bad", async () => {
    assert.equal(await presentedName(broker.port, ca.cert), "broker-1");
    const renewed = makeSigned(dir, ca, "broker-1-renewed", "server");
    writeFileSync(server.cert, readFileSync(renewed.cert));
    writeFileSync(server.key, readFileSync(renewed.key));
    process.kill(broker.pid!, "SIGHUP");
    await waitFor(async () => (await presentedName(broker.port, ca.cert)) === "broker-1-renewed");
    writeFileSync(server.key, "not a key");
    process.kill(broker.pid!, "SIGHUP");
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await presentedName(broker.port, ca.cert), "broker-1-renewed");
    writeFileSync(server.key, readFileSync(renewed.key));
    await broker.destroy();
  });

  it("with --ssl-client-ca admits only clients with a certificate from that CA", async () => {
    const client = makeSigned(dir, ca, "client-1", "client");
    broker = await BrokerProcess.start({
      extraArgs: ["--ssl-cert", server.cert, "--ssl-key", server.key, "--ssl-client-ca", ca.cert],
    });
    const noCert = kafkaClient(broker.address, { ca: [readFileSync(ca.cert)] }, "no-cert").admin();
    await assert.rejects(noCert.connect());
    await noCert.disconnect().catch(() => undefined);
    const otherCa = makeCa(dir, "other-ca");
    const stranger = makeSigned(dir, otherCa, "stranger", "client");
    const strangerAdmin = kafkaClient(broker.address, {
      ca: [readFileSync(ca.cert)],
      cert: readFileSync(stranger.cert),
      key: readFileSync(stranger.key),
    }).admin();
    await assert.rejects(strangerAdmin.connect());
    await strangerAdmin.disconnect().catch(() => undefined);
    const ssl = {
      ca: [readFileSync(ca.cert)],
      cert: readFileSync(client.cert),
      key: readFileSync(client.key),
    };
    assert.deepEqual(await roundTrip(kafkaClient(broker.address, ssl), "m1", ["m"]), ["m"]);
    const kcat = await runCommand("kcat", [
      "-b",
      broker.address,
      "-X",
      "security.protocol=ssl",
      "-X",
      `ssl.ca.location=${ca.cert}`,
      "-X",
      `ssl.certificate.location=${client.cert}`,
      "-X",
      `ssl.key.location=${client.key}`,
      "-C",
      "-t",
      "m1",
      "-o",
      "beginning",
      "-e",
      "-q",
    ]);
    assert.equal(kcat.code, 0, kcat.stderr);
    assert.equal(kcat.stdout.trim(), "m");
    await broker.destroy();
  });

  it("logkv start with SSL serves GraphQL through its own SSL clients", async () => {
    const data = join(dir, "node");
    const node = await NodeProcess.start(data, {}, [
      "--ssl-cert",
      server.cert,
      "--ssl-key",
      server.key,
      "--kafka-ca",
      ca.cert,
    ]);
    try {
      const created = await node.graphql(
        `mutation { createTable(input: { name: "ssl_items", partitionKey: { name: "pk", type: S } }) { table { name } } }`,
      );
      assert.equal(created.errors, undefined, JSON.stringify(created.errors));
      const put = await node.graphql(
        `mutation { putItem(table: "ssl_items", item: { pk: "a", n: 1 }) { token } }`,
      );
      assert.equal(put.errors, undefined, JSON.stringify(put.errors));
      const read = await node.graphql(
        `{ getItem(table: "ssl_items", key: { pk: "a" }, consistency: STRONG) { item } }`,
      );
      assert.deepEqual(read.data.getItem.item, { pk: "a", n: 1 });
      assert.equal(
        await plaintextApiVersions(Number(node.kafka.split(":")[1])),
        "closed without a Kafka answer",
      );
    } finally {
      await node.stop();
    }
  });

  it("a key that does not match its certificate fails start with INVALID_CONFIG", () => {
    const other = makeSigned(dir, ca, "other", "server");
    const result = spawnSync(
      process.execPath,
      [
        cliPath,
        "broker",
        "--data",
        join(dir, "bad"),
        "--listen",
        "127.0.0.1:0",
        "--ssl-cert",
        server.cert,
        "--ssl-key",
        other.key,
      ],
      { encoding: "utf8", timeout: 20_000 },
    );
    assert.equal(result.status, 1);
    assert.match(result.stderr, /TLS certificate .* and key/);
    const half = spawnSync(
      process.execPath,
      [cliPath, "broker", "--data", join(dir, "bad"), "--ssl-cert", server.cert],
      { encoding: "utf8", timeout: 20_000 },
    );
    assert.equal(half.status, 1);
    assert.match(half.stderr, /--ssl-cert and --ssl-key go together/);
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not reached");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
