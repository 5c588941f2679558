// Goal: docker-compose.yml (for users' own clusters; no Docker engine runs here) stays a
// valid Compose file whose topology is the one issue 8 names — per profile, 3 brokers
// (Apache Kafka KRaft, or the in-house Raft brokers), 2 materializers, 2 stateless gateways
// and Prometheus scraping every logkv part — and whose logkv commands would actually start:
// every command and flag exists in the CLI, every broker a part names is a service of its
// profile, and every Prometheus target is a service.
// Method: `docker-compose config` (Debian's docker-compose, which .ci/run installs) parses,
// validates and resolves the file without an engine; its YAML output is read with PyYAML
// (a docker-compose dependency) into JSON; `logkv help` gives the CLI's commands and flags.
import { it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cliPath, repoRoot } from "../helpers/broker-process.js";

interface Service {
  image?: string;
  command?: string | string[];
  profiles?: string[];
  ports?: { published: number; target: number }[];
}

function composeConfig(...args: string[]): { services: Record<string, Service> } {
  const config = spawnSync("docker-compose", [...args, "config"], {
    cwd: repoRoot,
    encoding: "utf8",
  });
  assert.equal(config.error, undefined, "docker-compose is installed (.ci/run installs it)");
  assert.equal(config.status, 0, config.stderr);
  const json = spawnSync(
    "/usr/bin/python3",
    ["-c", "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))"],
    { input: config.stdout, encoding: "utf8" },
  );
  assert.equal(json.status, 0, json.stderr);
  return JSON.parse(json.stdout) as { services: Record<string, Service> };
}

function words(command: Service["command"]): string[] {
  return Array.isArray(command) ? command : (command ?? "").split(/\s+/).filter(Boolean);
}

it("docker-compose.yml is a valid Compose file", () => {
  const result = spawnSync("docker-compose", ["config", "-q"], { cwd: repoRoot, encoding: "utf8" });
  assert.equal(result.error, undefined, "docker-compose is installed (.ci/run installs it)");
  assert.equal(result.status, 0, result.stderr);
});

it("each profile is the scale-out topology, with commands the CLI accepts", () => {
  const { services } = composeConfig("--profile", "kafka", "--profile", "raft");
  const help = spawnSync(process.execPath, [cliPath, "help"], { encoding: "utf8" }).stdout;
  const inProfile = (profile: string) =>
    Object.entries(services).filter(([, s]) => s.profiles?.includes(profile));
  const topology = {
    kafka: { brokers: /^kafka-\d$/, image: /^apache\/kafka:/ },
    raft: { brokers: /^logkv-broker-\d$/, image: /^logkv:/ },
  } as const;
  for (const [profile, want] of Object.entries(topology)) {
    const members = inProfile(profile);
    const named = (pattern: RegExp) => members.filter(([name]) => pattern.test(name));
    const brokers = named(want.brokers);
    assert.equal(brokers.length, 3, `${profile}: 3 brokers`);
    for (const [, broker] of brokers) assert.match(broker.image ?? "", want.image);
    const logkv = members.filter(([, s]) => (s.image ?? "").startsWith("logkv:"));
    const parts = (command: string) => logkv.filter(([, s]) => words(s.command)[0] === command);
    assert.equal(parts("materializer").length, 2, `${profile}: 2 materializers`);
    assert.equal(parts("gateway").length, 2, `${profile}: 2 gateways`);
    assert.ok(
      members.some(([name]) => name === "prometheus"),
      `${profile}: Prometheus`,
    );
    const brokerNames = new Set(brokers.map(([name]) => name));
    for (const [name, service] of logkv) {
      const argv = words(service.command);
      assert.match(help, new RegExp(`^  ${argv[0]}\\b`, "m"), `${name}: command ${argv[0]}`);
      for (const flag of argv.filter((w) => w.startsWith("--")))
        assert.ok(help.includes(flag), `${name}: ${flag} is a logkv flag`);
      const brokersFlag = argv.indexOf("--brokers");
      if (brokersFlag >= 0) {
        for (const address of argv[brokersFlag + 1]!.split(","))
          assert.ok(brokerNames.has(address.split(":")[0]!), `${name}: broker ${address}`);
      }
      if (argv[0] === "gateway") assert.ok(argv.includes("--stateless"), `${name} is stateless`);
      if (argv[0] === "materializer") {
        assert.ok(argv.includes("--rpc") && argv.includes("--replica-set"), name);
        assert.equal(argv[argv.indexOf("--rpc-advertise") + 1], `${name}:7070`);
      }
    }
  }
  const prometheus = readFileSync(join(repoRoot, "deploy/prometheus.yml"), "utf8");
  const targets = [...prometheus.matchAll(/"([\w-]+):(\d+)"/g)];
  assert.ok(targets.length >= 10, "Prometheus scrapes every logkv part");
  for (const [, host] of targets) assert.ok(host! in services, `Prometheus target ${host}`);
});
