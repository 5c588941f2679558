// Goal: bytes written with today's schemas stay readable by every future logkv: the
// compatibility guard. Method: fixtures/<kind>-v1.json hold hex single-object encodings of
// sample events and records, made with the v1 schemas, and the values they decode to;
// fixtures/fingerprints.json pins the fingerprint of every published version. Both are
// committed and never edited: a new version adds a new fixture file and a new pinned entry.
// LOGKV_WRITE_FIXTURES=1 creates missing fixture files and pins unpinned versions; it never
// rewrites what exists.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import {
  changeEventCodec,
  decodeChangeEvent,
  decodeEvent,
  decodeOutcome,
  decodeStoredItem,
  decodeTableDefinition,
  encodeChangeEvent,
  encodeEvent,
  encodeOutcome,
  encodeStoredItem,
  encodeTableDefinition,
  logEventCodec,
  outcomeCodec,
  storedItemCodec,
  tableDefinitionCodec,
  type ChangeEvent,
  type LogEvent,
  type Outcome,
  type StoredItem,
  type TableDefinition,
} from "../../schemas/events.js";
import type { RecordCodec } from "../../schemas/single-object.js";
import { dehydrate, revive } from "./fixture-json.js";
import { SAMPLE_EVENTS, SAMPLE_TABLE } from "./samples.js";

// Tests run from dist/test/schemas; fixtures stay in the source tree.
const FIXTURES = new URL("../../../test/schemas/fixtures/", import.meta.url);
const WRITE = process.env.LOGKV_WRITE_FIXTURES === "1";

interface FixtureFile {
  kind: string;
  version: number;
  fingerprint: string;
  cases: { name: string; hex: string; value: unknown }[];
}

interface Suite<T> {
  file: string;
  codec: RecordCodec;
  encode(value: T): Buffer;
  decode(bytes: Uint8Array): T;
  samples: [string, T][];
}

const item = JSON.parse(
  '{"__proto__": {"S": "proto"}, "10": {"N": "10"}}',
) as StoredItem["attributes"];
item.pk = { S: "user#1" };
item.blob = { B: Buffer.from("00ff10", "hex") };

const suites = [
  {
    file: "log-event-v1.json",
    codec: logEventCodec,
    encode: encodeEvent,
    decode: decodeEvent,
    samples: SAMPLE_EVENTS,
  } satisfies Suite<LogEvent>,
  {
    file: "table-definition-v1.json",
    codec: tableDefinitionCodec,
    encode: encodeTableDefinition,
    decode: decodeTableDefinition,
    samples: [["orders", SAMPLE_TABLE]],
  } satisfies Suite<TableDefinition>,
  {
    file: "stored-item-v1.json",
    codec: storedItemCodec,
    encode: encodeStoredItem,
    decode: decodeStoredItem,
    samples: [
      ["first write", { attributes: { pk: { S: "a" } }, version: 1n, lastOffset: 0n }],
      ["awkward keys", { attributes: item, version: 9007199254740993n, lastOffset: 42n }],
    ],
  } satisfies Suite<StoredItem>,
  {
    file: "outcome-v1.json",
    codec: outcomeCodec,
    encode: encodeOutcome,
    decode: decodeOutcome,
    samples: [
      ["ok none", { status: "OK", attributes: null }],
      ["ok old", { status: "OK", attributes: { pk: { S: "a" }, n: { N: "1" } } }],
      ["check failed", { status: "CONDITIONAL_CHECK_FAILED", item: { pk: { S: "a" } } }],
      ["validation", { status: "VALIDATION", message: "ExpressionAttributeValues unused: :v" }],
    ],
  } satisfies Suite<Outcome>,
  {
    file: "change-event-v1.json",
    codec: changeEventCodec,
    encode: encodeChangeEvent,
    decode: decodeChangeEvent,
    samples: (["PUT", "UPDATE", "DELETE", "TTL_DELETE"] as const).map((kind, i) => [
      kind.toLowerCase(),
      {
        table: "orders",
        partition: i,
        offset: BigInt(100 + i),
        timestampMs: 1_700_000_000_000n + BigInt(i),
        kind,
        keys: { pk: { S: "a" }, sk: { N: "1" } },
        oldImage: kind === "PUT" ? null : { pk: { S: "a" }, sk: { N: "1" }, v: { N: "1" } },
        newImage: kind.includes("DELETE") ? null : item,
      },
    ]),
  } satisfies Suite<ChangeEvent>,
];

function hexFingerprint(fingerprint: bigint): string {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64LE(fingerprint);
  return bytes.toString("hex");
}

function writeFixture<T>(suite: Suite<T>): void {
  const v1 = suite.codec.versions[0];
  assert.ok(v1 !== undefined && suite.codec.versions.length === 1, "fixtures are made by v1");
  const fixture: FixtureFile = {
    kind: suite.codec.name,
    version: 1,
    fingerprint: hexFingerprint(v1.fingerprint),
    cases: suite.samples.map(([name, value]) => ({
      name,
      hex: suite.encode(value).toString("hex"),
      value: dehydrate(value),
    })),
  };
  writeFileSync(new URL(suite.file, FIXTURES), `${JSON.stringify(fixture, null, 2)}\n`);
}

describe("v1 fixtures keep decoding", () => {
  for (const suite of suites as Suite<unknown>[]) {
    it(suite.file, () => {
      const url = new URL(suite.file, FIXTURES);
      if (!existsSync(url) && WRITE) writeFixture(suite);
      assert.ok(existsSync(url), `missing ${suite.file}; LOGKV_WRITE_FIXTURES=1 creates it`);
      const fixture = JSON.parse(readFileSync(url, "utf8")) as FixtureFile;
      assert.equal(fixture.kind, suite.codec.name);
      assert.ok(fixture.cases.length >= suite.samples.length);
      for (const { name, hex, value } of fixture.cases) {
        const bytes = Buffer.from(hex, "hex");
        assert.equal(bytes.subarray(2, 10).toString("hex"), fixture.fingerprint, name);
        assert.deepStrictEqual(suite.decode(bytes), revive(value), name);
      }
    });
  }
});

describe("published fingerprints are pinned", () => {
  it("fingerprints.json lists every published version, unchanged", () => {
    const url = new URL("fingerprints.json", FIXTURES);
    const pinned = existsSync(url)
      ? (JSON.parse(readFileSync(url, "utf8")) as Record<string, string[]>)
      : {};
    let changed = false;
    for (const suite of suites) {
      const current = suite.codec.versions.map((v) => hexFingerprint(v.fingerprint));
      const old = pinned[suite.codec.name] ?? [];
      // A published version is never edited or removed: the pinned list is a prefix.
      assert.deepStrictEqual(current.slice(0, old.length), old, `${suite.codec.name} changed`);
      if (current.length > old.length) {
        assert.ok(WRITE, `${suite.codec.name} has unpinned versions; LOGKV_WRITE_FIXTURES=1`);
        pinned[suite.codec.name] = current;
        changed = true;
      }
    }
    if (changed) writeFileSync(url, `${JSON.stringify(pinned, null, 2)}\n`);
  });
});
