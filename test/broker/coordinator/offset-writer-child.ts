// Child process for the SIGKILL test in file-offset-store.test.ts: opens a FileOffsetStore in
// the folder given as argv[2] and commits forever, many commits in flight at once, printing
// "ok <n>" after commit n resolved. The parent kills it with SIGKILL at a random moment and
// checks that every printed commit survived. Node's test runner also picks up every .js file
// under a test folder, so without LOGKV_OFFSET_WRITER=1 this file does nothing.
import { FileOffsetStore } from "../../../services/broker/coordinator/offset-store.js";
import { silentLogger } from "./helpers.js";

export const partitionCount = 8;

async function main(dir: string): Promise<void> {
  const store = await FileOffsetStore.open(dir, silentLogger);
  const inFlightMax = 16;
  let next = 0;
  const commitOne = async (n: number): Promise<void> => {
    await store.commit("g", [
      {
        topic: "t",
        partition: n % partitionCount,
        offset: BigInt(n),
        leaderEpoch: 0,
        metadata: `m${n}`,
        commitTimestampMs: n,
      },
    ]);
    process.stdout.write(`ok ${n}\n`);
  };
  const worker = async (): Promise<void> => {
    for (;;) await commitOne(next++);
  };
  await Promise.all(Array.from({ length: inFlightMax }, worker));
}

const dir = process.argv[2];
if (process.env["LOGKV_OFFSET_WRITER"] === "1" && dir !== undefined) {
  main(dir).catch((error: unknown) => {
    process.stderr.write(`offset writer failed: ${String(error)}\n`);
    process.exit(1);
  });
}
