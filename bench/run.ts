// `npm run bench`: every logkv benchmark in sequence (the log's, bench/log.ts, then the
// materializer's, bench/materializer.ts), each writing its own results under bench/results/.
// `--quick` runs each in its smoke size (about 35 s in all) instead of the full one (under
// 6.5 minutes on 2 cores).
import { parseArgs } from "node:util";
import { mainLogBench } from "./log.js";
import { mainMaterializerBench } from "./materializer.js";

const benchmarks: { name: string; main: (argv: string[]) => Promise<number> }[] = [
  { name: "log", main: mainLogBench },
  { name: "materializer", main: mainMaterializerBench },
  { name: "ycsb", main: async (argv) => (await import("./ycsb.js")).mainYcsbBench(argv) },
  {
    name: "transactions",
    main: async (argv) => (await import("./transactions.js")).mainTransactionsBench(argv),
  },
  {
    name: "restore",
    main: async (argv) => (await import("./restore.js")).mainRestoreBench(argv),
  },
  {
    name: "failover",
    main: async (argv) => (await import("./failover.js")).mainFailoverBench(argv),
  },
  {
    name: "scale-out",
    main: async (argv) => (await import("./scale-out.js")).mainScaleOutBench(argv),
  },
];

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { quick: { type: "boolean", default: false } },
  });
  const forwarded = values.quick === true ? ["--quick"] : [];
  let worst = 0;
  for (const bench of benchmarks) {
    const started = performance.now();
    console.log(`== bench ${bench.name}${forwarded.length > 0 ? " (quick)" : ""}`);
    worst = Math.max(worst, await bench.main(forwarded));
    console.log(
      `== bench ${bench.name} took ${((performance.now() - started) / 1000).toFixed(0)} s`,
    );
  }
  return worst;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
