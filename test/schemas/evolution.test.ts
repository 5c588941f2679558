// Goal: the evolution rules of schemas/README.md work, and breaking them is caught.
// Method: publish a test-only LogEvent v2 the way README.md says a real one is published
// (put-item-v2 adds a field with a default; log-event-v2 appends a TransactWrite branch),
// then check that (a) the v2 reader reads every v1 event, arbitrary ones and the committed
// v1 fixtures, as the v1 reader did plus the new default; (b) v2 writes what only v2 can
// carry and the deployed v1 reader refuses it as CORRUPT_DATA (readers upgrade first);
// (c) breaking changes (a field without a default, a retyped field, a removed branch) fail
// when the registry is built, not when data is read.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { isDbError } from "../../services/shared/errors.js";
import { composeSchema, type SchemaJson } from "../../schemas/canonical-form.js";
import { avscJson, PUBLISHED, composeVersion } from "../../schemas/avro/published.js";
import { createRecordCodec, type SchemaVersion } from "../../schemas/single-object.js";
import { decodeEvent, encodeEvent, logEventCodec } from "../../schemas/events.js";
import { logEvent } from "./arbitraries.js";
import { plain } from "./fixture-json.js";

const FIXTURES = new URL("../../../test/schemas/fixtures/", import.meta.url);

type Json = { [attribute: string]: unknown };

// "v1" here is the newest published LogEvent (today's writer) and "v2" the test-only next
// version: the rules hold between any published version and the next.
const PUBLISHED_LOG_EVENT = PUBLISHED["logkv.LogEvent"];
const V1 = PUBLISHED_LOG_EVENT[PUBLISHED_LOG_EVENT.length - 1]!;
/** The PutItem file of today's LogEvent, which the test-only v2 extends. */
const PUT_ITEM_FILE = V1.parts.find((file) => file.startsWith("put-item-"))!;

const PUT_ITEM_V2: SchemaJson = (() => {
  const schema = avscJson(PUT_ITEM_FILE) as Json;
  const fields = [...(schema.fields as Json[])];
  fields.push({ name: "returnConsumedCapacity", type: "boolean", default: false });
  return { ...schema, fields };
})();

const TRANSACT_WRITE_V1: SchemaJson = {
  type: "record",
  name: "TransactWrite",
  namespace: "logkv",
  fields: [
    { name: "transactionId", type: "string" },
    { name: "puts", type: { type: "array", items: "logkv.PutItem" } },
  ],
};

const LOG_EVENT_V2: SchemaJson = (() => {
  const schema = avscJson(V1.root) as Json;
  // The envelope's other fields (v4's catalogPosition) stay as they are.
  const [event, ...rest] = schema.fields as [Json, ...Json[]];
  return {
    ...schema,
    fields: [{ ...event, type: [...(event.type as string[]), "logkv.TransactWrite"] }, ...rest],
  };
})();

const V2_PARTS: SchemaJson[] = [
  ...V1.parts.filter((file) => file !== PUT_ITEM_FILE).map(avscJson),
  PUT_ITEM_V2,
  TRANSACT_WRITE_V1,
];

function v2(root: SchemaJson = LOG_EVENT_V2, parts = V2_PARTS): SchemaVersion {
  return { version: V1.version + 1, schema: composeSchema(root, parts) };
}

const codecV2 = createRecordCodec("logkv.LogEvent", [
  ...PUBLISHED_LOG_EVENT.map(composeVersion),
  v2(),
]);

/** What the v2 reader should see for v1 bytes: the v1 reading plus v2's defaults. */
function expectedUnderV2(v1Reading: unknown): unknown {
  const value = plain(v1Reading) as { event: Json };
  const put = value.event["logkv.PutItem"] as Json | undefined;
  if (put !== undefined) put.returnConsumedCapacity = false;
  return plain(value);
}

describe("a v2 reader reads v1", () => {
  it("every arbitrary v1 event", () => {
    fc.assert(
      fc.property(logEvent, (event) => {
        const bytes = encodeEvent(event);
        assert.deepStrictEqual(
          plain(codecV2.decode(bytes)),
          expectedUnderV2(logEventCodec.decode(bytes)),
        );
      }),
      { numRuns: 300 },
    );
  });

  it("the committed v1 fixtures", () => {
    const fixture = JSON.parse(readFileSync(new URL("log-event-v1.json", FIXTURES), "utf8")) as {
      cases: { name: string; hex: string }[];
    };
    for (const { name, hex } of fixture.cases) {
      const bytes = Buffer.from(hex, "hex");
      assert.deepStrictEqual(
        plain(codecV2.decode(bytes)),
        expectedUnderV2(logEventCodec.decode(bytes)),
        name,
      );
    }
  });
});

describe("v2 data", () => {
  const put = {
    table: "t",
    item: { pk: { value: { "logkv.StringValue": { S: "a" } } } },
    condition: null,
    names: {},
    values: {},
    returnValues: "NONE",
    requestId: null,
    restoreEpoch: null,
    returnConsumedCapacity: true,
  };

  it("round-trips through the v2 codec, new branch and new field included", () => {
    for (const value of [
      {
        event: { "logkv.TransactWrite": { transactionId: "tx", puts: [put] } },
        catalogPosition: null,
      },
      { event: { "logkv.PutItem": put }, catalogPosition: { long: 7n } },
    ]) {
      assert.deepStrictEqual(plain(codecV2.decode(codecV2.encode(value))), plain(value));
    }
  });

  it("is refused by today's reader as CORRUPT_DATA (deploy readers before writers)", () => {
    const bytes = codecV2.encode({ event: { "logkv.PutItem": put }, catalogPosition: null });
    assert.throws(
      () => decodeEvent(bytes),
      (e: unknown) => isDbError(e, "CORRUPT_DATA") && /unknown writer schema/.test(e.message),
    );
  });
});

describe("breaking changes fail when the registry is built", () => {
  function assertRefused(root: SchemaJson, parts: SchemaJson[], why: string): void {
    assert.throws(
      () =>
        createRecordCodec("logkv.LogEvent", [
          ...PUBLISHED_LOG_EVENT.map(composeVersion),
          v2(root, parts),
        ]),
      /cannot read/,
      why,
    );
  }

  it("a field added without a default", () => {
    const schema = avscJson(PUT_ITEM_FILE) as Json;
    const fields = [...(schema.fields as Json[]), { name: "extra", type: "string" }];
    const parts = V2_PARTS.filter((p) => p !== PUT_ITEM_V2).concat([{ ...schema, fields }]);
    assertRefused(LOG_EVENT_V2, parts, "no default");
  });

  it("a retyped field", () => {
    const schema = avscJson(PUT_ITEM_FILE) as Json;
    const fields = (schema.fields as Json[]).map((f) =>
      f.name === "table" ? { ...f, type: "int" } : f,
    );
    const parts = V2_PARTS.filter((p) => p !== PUT_ITEM_V2).concat([{ ...schema, fields }]);
    assertRefused(LOG_EVENT_V2, parts, "retyped");
  });

  it("a removed union branch", () => {
    const schema = avscJson(V1.root) as Json;
    const [event] = schema.fields as [Json];
    const branches = (event.type as string[]).filter((b) => b !== "logkv.TtlDelete");
    const root = { ...schema, fields: [{ ...event, type: branches }] };
    assertRefused(root, V2_PARTS, "removed branch");
  });
});
