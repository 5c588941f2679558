// The internal RPC over TLS, through the command line. Goal: `logkv materializer --rpc
// --rpc-tls-cert --rpc-tls-key` serves a `logkv gateway --stateless --rpc-tls-ca` that
// trusts its certificate; a stateless gateway without the CA fails start at once with a
// message naming the flag; a lone --rpc-tls-cert fails start with a clear message.
// Method: openssl makes a self-signed certificate; real broker, materializer and gateway
// processes on loopback; fetch to GraphQL.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BrokerProcess, cliPath } from "../helpers/broker-process.js";
import { MaterializerProcess } from "../helpers/materializer-process.js";
import { StatelessGatewayProcess } from "./helpers/stateless-gateway.js";

let dir: string;
let broker: BrokerProcess;
let materializer: MaterializerProcess;
const gateways: StatelessGatewayProcess[] = [];
let cert: string;
let key: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "logkv-rpc-tls-"));
  cert = join(dir, "rpc.crt");
  key = join(dir, "rpc.key");
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
      ...["-nodes", "-days", "1", "-subj", "/CN=rpc", "-addext", "subjectAltName=IP:127.0.0.1"],
      ...["-keyout", key, "-out", cert],
    ],
    { stdio: "ignore" },
  );
  broker = await BrokerProcess.start();
  materializer = await MaterializerProcess.start({
    brokers: [broker.address],
    nodeId: "tls1",
    extraArgs: ["--rpc", "127.0.0.1:0", "--rpc-tls-cert", cert, "--rpc-tls-key", key],
  });
});

after(async () => {
  for (const gateway of gateways) await gateway.stop();
  await materializer?.stop();
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("a gateway trusting the CA reads over TLS; one without it fails start, saying why", async () => {
  const trusted = await StatelessGatewayProcess.start([broker.address], ["--rpc-tls-ca", cert]);
  gateways.push(trusted);
  const created = await trusted.graphql(
    `mutation { createTable(input: {name: "secure", partitionKey: {name: "pk", type: S}}) {
      token } }`,
  );
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  const put = await trusted.graphql(`mutation { putItem(table: "secure", item: {pk: "a", n: 1})
    { token } }`);
  assert.equal(put.errors, undefined, JSON.stringify(put.errors));
  const read = await trusted.graphql(
    `query { getItem(table: "secure", key: {pk: "a"}, consistency: STRONG) { item } }`,
  );
  assert.deepEqual(read.data?.getItem?.item, { pk: "a", n: 1 });
  // Without the CA the gateway cannot fetch the catalog: start fails at once, saying why.
  const started = Date.now();
  await assert.rejects(
    StatelessGatewayProcess.start([broker.address], []),
    /exited 1:[^]*tls1 serves RPC over TLS: start with --rpc-tls-ca/,
  );
  assert.ok(Date.now() - started < 15_000);
});

test("--rpc-tls-cert without --rpc-tls-key fails start with INVALID_CONFIG's message", () => {
  const run = spawnSync(
    process.execPath,
    [cliPath, "materializer", "--data", join(dir, "x"), "--rpc", "127.0.0.1:0"].concat([
      "--rpc-tls-cert",
      cert,
    ]),
    { encoding: "utf8", timeout: 20_000 },
  );
  assert.equal(run.status, 1);
  assert.match(run.stderr, /--rpc-tls-cert and --rpc-tls-key go together/);
});
