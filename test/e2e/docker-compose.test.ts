// Goal: docker-compose.yml (for users' own clusters; no Docker engine runs here) stays a
// valid Compose file. Method: `docker-compose config -q` (Debian's docker-compose, which
// .ci/run installs) parses and validates it without needing an engine.
import { it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { repoRoot } from "../helpers/broker-process.js";

it("docker-compose.yml is a valid Compose file", () => {
  const result = spawnSync("docker-compose", ["config", "-q"], { cwd: repoRoot, encoding: "utf8" });
  assert.equal(result.error, undefined, "docker-compose is installed (.ci/run installs it)");
  assert.equal(result.status, 0, result.stderr);
});
