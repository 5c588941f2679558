// `node dist/bench/catalog-stamp.js`: what deciding writes at their catalog position costs
// the applier (materializer/catalog/README.md). In-process, no broker: the real Applier on
// a MemoryStore applies RECORDS puts in batches of BATCH to a table with a global index,
// unstamped and stamped with the applied catalog position (no wait: the catalog is there),
// alternating, ROUNDS times each; prints records per second (median). Not part of
// `npm run bench`: the machine it runs on may be shared, so compare the two lines, not
// runs on different days.
import { Applier, type LogRecord } from "../materializer/consume/applier.js";
import { CATALOG_TOPIC, tableTopic } from "../materializer/state/records.js";
import { MemoryStore } from "../materializer/store/store.js";
import { encodeEvent, type LogEvent, type TableDefinition } from "../schemas/events.js";

const RECORDS = 20_000;
const BATCH = 100;
const ROUNDS = 5;

const table: TableDefinition = {
  name: "bench",
  partitionKey: { name: "pk", type: "S" },
  sortKey: null,
  localIndexes: [],
  globalIndexes: [
    {
      name: "byG",
      partitionKey: { name: "g", type: "S" },
      sortKey: null,
      projection: { type: "ALL", nonKeyAttributes: [] },
    },
  ],
  ttlAttribute: null,
  partitions: 1,
};

function records(stamped: boolean): LogRecord[] {
  return Array.from({ length: RECORDS }, (_, i) => {
    const event: LogEvent = {
      type: "PutItem",
      table: "bench",
      item: { pk: { S: `k${i % 5000}` }, g: { S: `g${i % 17}` }, n: { N: String(i) } },
      condition: null,
      names: {},
      values: {},
      returnValues: "NONE",
      requestId: null,
      ...(stamped && { catalogPosition: 1n }),
    };
    return { offset: BigInt(i), timestampMs: 1_000n, value: encodeEvent(event) };
  });
}

async function once(input: LogRecord[]): Promise<number> {
  const applier = await Applier.open(new MemoryStore());
  applier.followCatalog();
  const create = encodeEvent({ type: "CreateTable", table });
  await applier.applyBatch(CATALOG_TOPIC, 0, [{ offset: 0n, timestampMs: 0n, value: create }]);
  const topic = tableTopic("bench", 0n);
  const started = performance.now();
  for (let i = 0; i < input.length; i += BATCH) {
    await applier.applyBatch(topic, 0, input.slice(i, i + BATCH));
  }
  const seconds = (performance.now() - started) / 1000;
  await applier.close();
  return RECORDS / seconds;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const plain = records(false);
const stamped = records(true);
const rates = { unstamped: [] as number[], stamped: [] as number[] };
await once(plain); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  rates.unstamped.push(await once(plain));
  rates.stamped.push(await once(stamped));
}
for (const [name, xs] of Object.entries(rates)) {
  console.log(`${name.padEnd(10)} ${Math.round(median(xs)).toLocaleString("en")} records/s`);
}
