// Allocates idempotent producer ids that are never reused, even across crashes: ids are
// handed out from a block whose upper end is made durable before any id of it is given
// out. After a restart allocation resumes at the next block, so a crash wastes at most one
// block of ids and never repeats one (Kafka's ProducerIdManager does the same with blocks).
import { mkdir, open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";

const BLOCK_SIZE = 1000n;

export class ProducerIdManager {
  private next = 0n;
  private blockEnd = 0n;
  private reserving: Promise<void> | null = null;

  private constructor(
    private readonly dir: string,
    private readonly base: bigint,
  ) {}

  /** `base` offsets every id handed out (clustered brokers each get their own range). */
  static async open(dataDir: string, base = 0n): Promise<ProducerIdManager> {
    const dir = join(dataDir, "meta");
    await mkdir(dir, { recursive: true });
    const manager = new ProducerIdManager(dir, base);
    try {
      const saved = JSON.parse(await readFile(join(dir, "producer-ids.json"), "utf8")) as {
        blockEnd: string;
      };
      manager.next = BigInt(saved.blockEnd);
      manager.blockEnd = manager.next;
    } catch {
      // No file yet: a new broker starts allocating at 0.
    }
    return manager;
  }

  async allocate(): Promise<bigint> {
    while (this.next >= this.blockEnd) {
      this.reserving ??= this.reserveBlock().finally(() => (this.reserving = null));
      await this.reserving;
    }
    return this.base + this.next++;
  }

  private async reserveBlock(): Promise<void> {
    const end = this.blockEnd + BLOCK_SIZE;
    const temp = join(this.dir, "producer-ids.json.tmp");
    const handle = await open(temp, "w");
    try {
      await handle.writeFile(JSON.stringify({ blockEnd: end.toString() }));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, join(this.dir, "producer-ids.json"));
    const dirHandle = await open(this.dir, "r");
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
    this.next = this.blockEnd > this.next ? this.blockEnd : this.next;
    this.blockEnd = end;
  }
}
