// Goal: the gateway's /graphql endpoint follows the GraphQL-over-HTTP specification, as the
// graphql-http package's server audits check it (issue 4, must show 2).
// Method: an embedded node on free ports; every audit of graphql-http's serverAudits runs
// against its URL; every one must pass, the MUST audits and the SHOULD/MAY ones alike.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serverAudits } from "graphql-http";
import { startEmbeddedNode, type RunningNode } from "../../gateway/node.js";
import { createLogger, setLogLevel } from "../../services/shared/log.js";

describe("GraphQL over HTTP server audits", () => {
  let dir: string;
  let node: RunningNode;

  before(async () => {
    setLogLevel("error");
    dir = mkdtempSync(join(tmpdir(), "logkv-audit-"));
    node = await startEmbeddedNode({
      dataDir: dir,
      kafka: { host: "127.0.0.1", port: 0 },
      graphql: { host: "127.0.0.1", port: 0 },
      logger: createLogger("test"),
    });
  });

  after(async () => {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("passes every audit", async () => {
    const audits = serverAudits({ url: node.gateway.url });
    const failures: string[] = [];
    const notes: string[] = [];
    for (const audit of audits) {
      const result = await audit.fn();
      if (result.status === "ok") continue;
      const line = `${audit.name}: ${result.reason}`;
      if (audit.name.startsWith("MUST")) failures.push(line);
      else notes.push(line);
    }
    assert.ok(audits.length > 20, "the audit suite ran");
    assert.deepEqual(failures, [], "MUST audits");
    assert.deepEqual(notes, [], "SHOULD and MAY audits");
  });
});
