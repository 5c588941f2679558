// Goal: the Raft shell works for real: three node processes talking TCP over loopback elect
// a leader, replicate and commit proposals, and when the leader is SIGKILLed the other two
// elect a new one within about a second, keep committing, and the killed node comes back
// from its fsynced log and catches up. Every acknowledged proposal ends up exactly once, in
// the same order, on every node.
// Method: fork three fixture processes (fixtures/raft-node.ts), each a RaftGroup with a
// recording state machine, driven over IPC; propose through whichever node leads, retrying
// on NOT_LEADER like a client would; compare the applied sequences at the end.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fork, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures/raft-node.js");

interface Reply {
  id?: number;
  ok?: boolean;
  error?: string;
  ready?: boolean;
  index?: number;
  status?: { role: string; term: number; leader: number | null; commit: number };
  values?: string[];
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

class Node {
  child: ChildProcess | null = null;
  private nextId = 1;
  private pending = new Map<number, (reply: Reply) => void>();

  constructor(
    readonly id: number,
    readonly dir: string,
    readonly port: number,
    readonly peers: string,
  ) {}

  async start(): Promise<void> {
    const child = fork(fixture, [String(this.id), this.dir, String(this.port), this.peers], {
      stdio: ["ignore", "ignore", "ignore", "ipc"],
    });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      child.on("message", (reply: Reply) => {
        if (reply.ready === true) return resolve();
        const done = reply.id === undefined ? undefined : this.pending.get(reply.id);
        if (done !== undefined) {
          this.pending.delete(reply.id!);
          done(reply);
        }
      });
      child.once("exit", () => {
        for (const done of this.pending.values()) done({ ok: false, error: "exited" });
        this.pending.clear();
        reject(new Error(`node ${this.id} exited`));
      });
    });
  }

  call(request: Record<string, unknown>): Promise<Reply> {
    const child = this.child;
    if (child === null || child.exitCode !== null || child.signalCode !== null) {
      return Promise.resolve({ ok: false, error: "down" });
    }
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      child.send({ ...request, id });
    });
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    this.child = null;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function findLeader(nodes: Node[], deadlineMs: number): Promise<Node> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    for (const node of nodes) {
      const reply = await node.call({ op: "status" });
      if (reply.ok === true && reply.status?.role === "leader") return node;
    }
    await sleep(10);
  }
  throw new Error("no leader elected in time");
}

/** Proposes until some node acknowledges it; returns the time it took. */
async function proposeAcked(nodes: Node[], value: string): Promise<number> {
  const started = Date.now();
  for (;;) {
    for (const node of nodes) {
      const reply = await node.call({ op: "propose", value });
      if (reply.ok === true) return Date.now() - started;
    }
    if (Date.now() - started > 10_000) throw new Error(`proposal ${value} never acknowledged`);
    await sleep(5);
  }
}

test("three processes elect, replicate, survive a leader SIGKILL and agree", async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "logkv-raft-loopback-"));
  const ports = [await freePort(), await freePort(), await freePort()];
  const peers = ports.map((port, i) => `${i + 1}@127.0.0.1:${port}`).join(",");
  const nodes = ports.map((port, i) => new Node(i + 1, path.join(root, `n${i + 1}`), port, peers));
  t.after(async () => {
    for (const node of nodes) await node.kill();
    fs.rmSync(root, { recursive: true, force: true });
  });
  await Promise.all(nodes.map((n) => n.start()));
  const first = await findLeader(nodes, 10_000);

  const acked: string[] = [];
  for (let i = 0; i < 100; i++) {
    await proposeAcked(nodes, `v${i}`);
    acked.push(`v${i}`);
  }
  await first.kill();
  const failoverMs = await proposeAcked(nodes, "after-kill");
  acked.push("after-kill");
  // Election timeout is 300-600 ms (12 ticks of 25 ms, randomized): well under 1 s on an
  // idle machine; the bound leaves room for a loaded CI runner.
  assert.ok(failoverMs < 5000, `failover took ${failoverMs} ms`);
  const second = await findLeader(nodes, 5000);
  assert.notEqual(second.id, first.id);
  for (let i = 100; i < 200; i++) {
    await proposeAcked(nodes, `v${i}`);
    acked.push(`v${i}`);
  }
  await first.start();
  // The restarted node recovers its log from disk and catches up from the new leader.
  const deadline = Date.now() + 10_000;
  let lists: string[][] = [];
  while (Date.now() < deadline) {
    lists = await Promise.all(nodes.map(async (n) => (await n.call({ op: "values" })).values!));
    if (lists.every((l) => l.length >= acked.length)) break;
    await sleep(50);
  }
  for (const [i, list] of lists.entries()) {
    assert.deepEqual(list, lists[0], `node ${i + 1} applied a different sequence`);
    const seen = new Set(list);
    assert.equal(seen.size, list.length, `node ${i + 1} applied a value twice`);
    for (const value of acked) assert.ok(seen.has(value), `node ${i + 1} lost ${value}`);
  }
  // Acknowledged order is preserved: proposals were sequential.
  const positions = acked.map((v) => lists[0]!.indexOf(v));
  for (let i = 1; i < positions.length; i++) assert.ok(positions[i]! > positions[i - 1]!);
  t.diagnostic(`failover to next ack: ${failoverMs} ms`);
});
