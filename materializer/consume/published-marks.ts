// How far each table partition's change events have been published to its changes topic.
// Kept in a small file beside the store, not in it: the mark says how far this process got
// (like a consumer's position), not something the log decides, and the store must hold
// only state that is a function of the log (two replicas' stores stay byte-identical).
// Written without fsync: a mark lost in a crash only makes the publisher send some change
// events again, which the index appliers skip by their watermarks.
import { readFileSync } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

export class PublishedMarks {
  private readonly marks = new Map<string, bigint>();
  private writing: Promise<void> = Promise.resolve();
  /** A write queued behind `writing` that has not taken its snapshot yet. */
  private pending: Promise<void> | null = null;

  private constructor(private readonly path: string) {}

  static open(dataDir: string): PublishedMarks {
    const marks = new PublishedMarks(join(dataDir, "published.json"));
    try {
      const saved = JSON.parse(readFileSync(marks.path, "utf8")) as Record<string, string>;
      for (const [id, offset] of Object.entries(saved)) marks.marks.set(id, BigInt(offset));
    } catch {
      // Missing or torn: start from 0 and republish what the store retains.
    }
    return marks;
  }

  get(topic: string, partition: number): bigint {
    return this.marks.get(`${topic}/${partition}`) ?? 0n;
  }

  /**
   * Records a mark and schedules a write of all marks. Writes coalesce: while one is in
   * flight, later marks wait for one following write that carries them all, so a busy
   * partition costs one small file write per write round, not one per batch.
   */
  set(topic: string, partition: number, nextOffset: bigint): Promise<void> {
    const id = `${topic}/${partition}`;
    if ((this.marks.get(id) ?? 0n) >= nextOffset) return this.pending ?? this.writing;
    this.marks.set(id, nextOffset);
    if (this.pending !== null) return this.pending;
    const temp = `${this.path}.tmp`;
    const pending = this.writing.then(async () => {
      this.pending = null;
      const snapshot = JSON.stringify(
        Object.fromEntries([...this.marks].map(([k, v]) => [k, v.toString()])),
      );
      await writeFile(temp, snapshot);
      await rename(temp, this.path);
    });
    this.pending = pending;
    this.writing = pending;
    return pending;
  }

  flush(): Promise<void> {
    return this.writing;
  }
}
