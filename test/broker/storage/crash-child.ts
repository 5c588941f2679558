// Child process of crash.test.ts: appends deterministic batches from several concurrent
// producers and prints "<n> <baseOffset>" for batch n only after waitDurable resolved for
// it. The parent SIGKILLs this process at a random moment. Stdout is a pipe, which Node
// writes synchronously on Linux, so a printed line is never lost by the kill.
import { PartitionLog } from "../../../services/broker/storage/partition-log.js";
import { crashBatch, crashConfig } from "./crash-shared.js";
import { recordingLogger } from "./helpers.js";

const [dir, seedText, firstText] = process.argv.slice(2);
const seed = Number(seedText);
let next = Number(firstText);

const log = await PartitionLog.open(crashConfig(dir!), recordingLogger());
process.stdout.write(`ready ${log.logEndOffset}\n`);

async function producer(): Promise<void> {
  for (;;) {
    const n = next++;
    const { baseOffset, lastOffset } = log.append([crashBatch(seed, n)]);
    await log.waitDurable(lastOffset + 1n);
    process.stdout.write(`${n} ${baseOffset}\n`);
  }
}

await Promise.all([producer(), producer(), producer(), producer()]);
