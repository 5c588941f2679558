// Goal: the Raft storage gives back after a crash exactly a state that was durable at some
// point: every persisted hard state, entry replacement and snapshot survives a reopen; a
// torn or corrupt tail (a write that was never acknowledged) is cut off, never half-read,
// and later writes follow the last good record.
// Method: persist a scripted history, recording the state after each persist; then cut the
// file at every byte boundary (and flip bytes in its tail) and check that reopening yields
// one of the recorded states, the longest one whose records are wholly intact.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { FileRaftStorage } from "../../../services/broker/raft/file-storage.js";
import type { Entry, RaftStorageState } from "../../../services/broker/raft/types.js";

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "logkv-raft-storage-"));
}

function entry(index: number, term: number, text = `e${index}.${term}`): Entry {
  return { index, term, type: "normal", data: new TextEncoder().encode(text) };
}

function plain(state: RaftStorageState): unknown {
  return JSON.parse(
    JSON.stringify(state, (_k, v: unknown) => (v instanceof Uint8Array ? [...v] : v)),
  );
}

/** Persists a history with a conflicting-suffix replacement; returns states and file sizes. */
async function writeHistory(dir: string): Promise<{ states: unknown[]; sizes: number[] }> {
  const storage = await FileRaftStorage.open({ dir, bootstrapVoters: [1, 2, 3] });
  const file = path.join(dir, "raft.log");
  const states = [plain(storage.state())];
  const sizes = [fs.statSync(file).size];
  const steps = [
    { snapshot: null, entries: [], hardState: { term: 1, vote: 2, commit: 0 } },
    { snapshot: null, entries: [entry(1, 1), entry(2, 1), entry(3, 1)], hardState: null },
    { snapshot: null, entries: [entry(4, 1)], hardState: { term: 1, vote: 2, commit: 2 } },
    // A new leader overwrites the uncommitted suffix from index 3.
    {
      snapshot: null,
      entries: [entry(3, 2), entry(4, 2)],
      hardState: { term: 2, vote: 3, commit: 2 },
    },
    { snapshot: null, entries: [entry(5, 2)], hardState: { term: 2, vote: 3, commit: 5 } },
  ];
  for (const step of steps) {
    await storage.persist(step);
    states.push(plain(storage.state()));
    sizes.push(fs.statSync(file).size);
  }
  await storage.close();
  return { states, sizes };
}

test("a reopened storage holds exactly what was persisted, suffix replacement included", async () => {
  const dir = tempDir();
  const { states } = await writeHistory(dir);
  const reopened = await FileRaftStorage.open({ dir, bootstrapVoters: [9] });
  assert.deepEqual(plain(reopened.state()), states.at(-1));
  const s = reopened.state();
  assert.deepEqual(
    s.entries.map((e) => `${e.index}.${e.term}`),
    ["1.1", "2.1", "3.2", "4.2", "5.2"],
  );
  assert.deepEqual(s.hardState, { term: 2, vote: 3, commit: 5 });
  // The bootstrap voters were made durable at first open; later arguments are ignored.
  assert.deepEqual(s.snapshot.meta.conf.voters, [1, 2, 3]);
  await reopened.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test("a file cut at any byte reopens as the last state whose records are whole", async () => {
  const dir = tempDir();
  const { states, sizes } = await writeHistory(dir);
  const full = fs.readFileSync(path.join(dir, "raft.log"));
  for (let cut = sizes[0]!; cut <= full.length; cut++) {
    const copy = tempDir();
    fs.writeFileSync(path.join(copy, "raft.log"), full.subarray(0, cut));
    const storage = await FileRaftStorage.open({ dir: copy, bootstrapVoters: [1, 2, 3] });
    const expected = sizes.findLastIndex((size) => size <= cut);
    assert.deepEqual(plain(storage.state()), states[expected], `cut at ${cut}`);
    assert.equal(storage.recoveredBytes, sizes[expected], `cut at ${cut}`);
    // New records follow the last good one and survive the next reopen.
    await storage.persist({
      snapshot: null,
      entries: [],
      hardState: { term: 7, vote: 1, commit: 0 },
    });
    await storage.close();
    const again = await FileRaftStorage.open({ dir: copy, bootstrapVoters: [1, 2, 3] });
    assert.equal(again.state().hardState.term, 7, `cut at ${cut}`);
    await again.close();
    fs.rmSync(copy, { recursive: true, force: true });
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test("a corrupt byte in the last record drops that record and nothing before it", async () => {
  const dir = tempDir();
  const { states, sizes } = await writeHistory(dir);
  const full = fs.readFileSync(path.join(dir, "raft.log"));
  const lastStart = sizes.at(-2)!;
  for (let pos = lastStart; pos < full.length; pos++) {
    const copy = tempDir();
    const broken = Buffer.from(full);
    broken[pos] = broken[pos]! ^ 0x5a;
    fs.writeFileSync(path.join(copy, "raft.log"), broken);
    const storage = await FileRaftStorage.open({ dir: copy, bootstrapVoters: [1, 2, 3] });
    assert.deepEqual(plain(storage.state()), states.at(-2), `flip at ${pos}`);
    await storage.close();
    fs.rmSync(copy, { recursive: true, force: true });
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test("saveSnapshot compacts the file and keeps later entries and the hard state", async () => {
  const dir = tempDir();
  await writeHistory(dir);
  const storage = await FileRaftStorage.open({ dir, bootstrapVoters: [1, 2, 3] });
  const before = fs.statSync(path.join(dir, "raft.log")).size;
  await storage.saveSnapshot({
    meta: { index: 3, term: 2, conf: { voters: [1, 2, 3] } },
    data: new Uint8Array([1, 2, 3]),
  });
  assert.ok(fs.statSync(path.join(dir, "raft.log")).size < before);
  await storage.close();
  const reopened = await FileRaftStorage.open({ dir, bootstrapVoters: [1, 2, 3] });
  const s = reopened.state();
  assert.equal(s.snapshot.meta.index, 3);
  assert.deepEqual(
    s.entries.map((e) => e.index),
    [4, 5],
  );
  assert.deepEqual(s.hardState, { term: 2, vote: 3, commit: 5 });
  await reopened.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test("a compaction cut short before its rename leaves the old file in force", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "logkv-raft-tmp-"));
  const storage = await FileRaftStorage.open({ dir, bootstrapVoters: [1, 2, 3] });
  const entries = [1, 2, 3, 4].map((index) => ({
    term: 1,
    index,
    type: "normal" as const,
    data: new Uint8Array([index]),
  }));
  await storage.persist({ snapshot: null, entries, hardState: { term: 1, vote: 1, commit: 4 } });
  await storage.close();
  // A crash while saveSnapshot wrote its temporary file: a half-written raft.log.tmp.
  fs.writeFileSync(path.join(dir, "raft.log.tmp"), Buffer.from("half a snapshot"));
  const reopened = await FileRaftStorage.open({ dir, bootstrapVoters: [1, 2, 3] });
  const state = reopened.state();
  assert.equal(state.snapshot.meta.index, 0);
  assert.deepEqual(
    state.entries.map((e) => e.index),
    [1, 2, 3, 4],
  );
  // The next compaction overwrites the leftover and takes effect.
  await reopened.saveSnapshot({
    meta: { index: 3, term: 1, conf: { voters: [1, 2, 3] } },
    data: new Uint8Array([9]),
  });
  await reopened.close();
  const after = (await FileRaftStorage.open({ dir, bootstrapVoters: [1, 2, 3] })).state();
  assert.equal(after.snapshot.meta.index, 3);
  assert.deepEqual(
    after.entries.map((e) => e.index),
    [4],
  );
  assert.equal(after.hardState.commit, 4);
  fs.rmSync(dir, { recursive: true, force: true });
});
