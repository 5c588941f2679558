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
  status?: {
    role: string;
    term: number;
    leader: number | null;
    commit: number;
    firstIndex: number;
  };
  values?: string[];
  appliedHere?: number;
  restoredIndex?: number;
  snapshots?: { taken: number; installed: number };
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
  /** Requests go only to a child that said it is ready (earlier IPC messages may be lost). */
  private ready = false;
  private nextId = 1;
  private pending = new Map<number, (reply: Reply) => void>();

  constructor(
    readonly id: number,
    readonly dir: string,
    readonly port: number,
    readonly peers: string,
    readonly snapshotEntries?: number,
  ) {}

  async start(): Promise<void> {
    const args = [String(this.id), this.dir, String(this.port), this.peers];
    if (this.snapshotEntries !== undefined) args.push(String(this.snapshotEntries));
    const child = fork(fixture, args, {
      stdio: ["ignore", "ignore", "ignore", "ipc"],
    });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      child.on("message", (reply: Reply) => {
        if (reply.ready === true) {
          this.ready = true;
          return resolve();
        }
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
    if (child === null || !this.ready || child.exitCode !== null || child.signalCode !== null) {
      return Promise.resolve({ ok: false, error: "down" });
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      // A live node answers every request; silence is a bug (a proposal never settled).
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`node ${this.id}: no answer to ${JSON.stringify(request)} in 20 s`));
      }, 20_000);
      this.pending.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      child.send({ ...request, id });
    });
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    this.ready = false;
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

async function valuesOf(nodes: Node[]): Promise<Reply[]> {
  return Promise.all(nodes.map((n) => n.call({ op: "values" })));
}

/**
 * Waits until every node applied every acknowledged value and the same sequence (a count
 * would not do: after a crash a retried value may be applied twice); returns the replies.
 */
async function converged(nodes: Node[], acked: string[]): Promise<Reply[]> {
  const deadline = Date.now() + 15_000;
  let replies: Reply[] = [];
  while (Date.now() < deadline) {
    replies = await valuesOf(nodes);
    const lists = replies.map((r) => r.values ?? []);
    const complete = lists.every((list) => {
      const seen = new Set(list);
      return acked.every((value) => seen.has(value));
    });
    if (complete && lists.every((list) => list.length === lists[0]!.length)) return replies;
    await sleep(50);
  }
  throw new Error(`not converged: ${replies.map((r) => r.values?.length ?? r.error).join(",")}`);
}

/**
 * Same sequence everywhere, holding every acknowledged value. `unique`: each once (only
 * without crashes: a client retry after a crash may commit a value twice, Raft has no
 * idempotence of its own).
 */
function checkAgree(replies: Reply[], acked: string[], unique = true): void {
  const lists = replies.map((r) => r.values!);
  for (const [i, list] of lists.entries()) {
    assert.deepEqual(list, lists[0], `node ${i + 1} applied a different sequence`);
    if (unique)
      assert.equal(new Set(list).size, list.length, `node ${i + 1} applied a value twice`);
    const missing = acked.filter((value) => !list.includes(value));
    const short = (v: string) => v.slice(0, 12);
    assert.deepEqual(missing.map(short), [], `node ${i + 1} lost acknowledged values`);
  }
}

function cluster(root: string, ports: number[], snapshotEntries: number): Node[] {
  const peers = ports.map((port, i) => `${i + 1}@127.0.0.1:${port}`).join(",");
  return ports.map(
    (port, i) => new Node(i + 1, path.join(root, `n${i + 1}`), port, peers, snapshotEntries),
  );
}

test("snapshots: a follower down while the leader compacts catches up by InstallSnapshot, and a restart replays only the tail", async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "logkv-raft-snapshot-"));
  const ports = [await freePort(), await freePort(), await freePort()];
  const nodes = cluster(root, ports, 20);
  t.after(async () => {
    for (const node of nodes) await node.kill();
    fs.rmSync(root, { recursive: true, force: true });
  });
  await Promise.all(nodes.map((n) => n.start()));
  const leader = await findLeader(nodes, 10_000);
  const acked: string[] = [];
  for (let i = 0; i < 10; i++) {
    await proposeAcked(nodes, `a${i}`);
    acked.push(`a${i}`);
  }
  await converged(nodes, acked);
  const down = nodes.find((n) => n !== leader)!;
  await down.kill();
  for (let i = 0; i < 100; i++) {
    await proposeAcked(nodes, `b${i}`);
    acked.push(`b${i}`);
  }
  const status = (await leader.call({ op: "status" })).status!;
  assert.ok(
    status.firstIndex > 50,
    `the leader did not compact (first index ${status.firstIndex})`,
  );
  await down.start();
  const replies = await converged(nodes, acked);
  checkAgree(replies, acked);
  const caughtUp = replies[down.id - 1]!;
  assert.ok(caughtUp.snapshots!.installed >= 1, "the lagging follower installed no snapshot");
  assert.ok(caughtUp.restoredIndex! > 50, `restored from index ${caughtUp.restoredIndex}`);
  assert.ok(
    caughtUp.appliedHere! < acked.length - 50,
    `the follower applied ${caughtUp.appliedHere} entries one by one`,
  );
  t.diagnostic(`follower: ${JSON.stringify({ ...caughtUp, values: caughtUp.values!.length })}`);

  // Every node restarted: each comes back from its snapshot plus the tail of its log.
  for (const node of nodes) await node.kill();
  await Promise.all(nodes.map((n) => n.start()));
  await proposeAcked(nodes, "after-restart");
  acked.push("after-restart");
  const again = await converged(nodes, acked);
  checkAgree(again, acked);
  for (const [i, reply] of again.entries()) {
    assert.ok(reply.restoredIndex! > 50, `node ${i + 1} restored from ${reply.restoredIndex}`);
    // At most a snapshot interval (20) of entries, the new proposal and a leader's no-op
    // or two replay one by one: not the ~110 in the log before compaction.
    assert.ok(reply.appliedHere! <= 30, `node ${i + 1} replayed ${reply.appliedHere} entries`);
  }
});

test("snapshots: SIGKILL at random moments while every node compacts every few entries", async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "logkv-raft-snapshot-kill-"));
  const ports = [await freePort(), await freePort(), await freePort()];
  // A snapshot every 3 entries: most moments are inside or near a snapshot rewrite.
  const nodes = cluster(root, ports, 3);
  t.after(async () => {
    for (const node of nodes) await node.kill();
    fs.rmSync(root, { recursive: true, force: true });
  });
  await Promise.all(nodes.map((n) => n.start()));
  await findLeader(nodes, 10_000);
  const acked: string[] = [];
  const padding = "x".repeat(20_000);
  const trace: string[] = [];
  let running = true;
  const producing = (async () => {
    for (let i = 0; running; i++) {
      const value = `k${i}-${padding}`;
      await proposeAcked(nodes, value);
      acked.push(value);
      trace.push(`ack k${i}`);
    }
  })();
  const kills = 8;
  for (let k = 0; k < kills; k++) {
    await sleep(100 + Math.floor(Math.random() * 300));
    const victim = nodes[k % nodes.length]!;
    trace.push(`kill ${victim.id}`);
    await victim.kill();
    await sleep(50);
    await victim.start();
    trace.push(`started ${victim.id}`);
  }
  // Enough writes after the last restart that every node must compact again (one snapshot
  // every 3 entries), whatever the random kill timing left.
  const settled = acked.length;
  while (acked.length < settled + 10) await sleep(20);
  running = false;
  await producing;
  const replies = await converged(nodes, acked);
  t.diagnostic(trace.join(" "));
  checkAgree(replies, acked, false);
  const taken = replies.reduce((n, r) => n + r.snapshots!.taken, 0);
  assert.ok(taken > 0, "no snapshot was taken after the last restarts");
  t.diagnostic(`${acked.length} acknowledged, ${kills} kills, ${taken} snapshots since`);
});
