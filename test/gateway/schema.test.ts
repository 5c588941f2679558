// Goal: the SDL the gateway serves is the one in schemas/graphql, it builds, and the small
// pure parts around it (session tokens, the depth limit) keep their contracts.
// Method: compare the embedded copy with the file; property tests on token merge and
// encoding; validation of documents against the depth rule.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { buildSchema, parse, validate } from "graphql";
import { typeDefs } from "../../gateway/schema/sdl.js";
import { SessionToken } from "../../gateway/consistency/token.js";
import { depthLimitRule } from "../../gateway/schema/depth-limit.js";
import { isDbError } from "../../services/shared/errors.js";
import { repoRoot } from "../helpers/broker-process.js";

describe("GraphQL schema", () => {
  it("the embedded SDL equals schemas/graphql/schema.graphql", () => {
    const file = readFileSync(join(repoRoot, "schemas/graphql/schema.graphql"), "utf8");
    assert.equal(typeDefs, file);
  });

  it("builds, with DynamoDB's operation names", () => {
    const schema = buildSchema(typeDefs);
    const query = Object.keys(schema.getQueryType()!.getFields()).sort();
    const mutation = Object.keys(schema.getMutationType()!.getFields()).sort();
    assert.deepEqual(query, [
      "backups",
      "batchGetItem",
      "describeTable",
      "getItem",
      "listTables",
      "query",
      "recoveryWindow",
      "restoreStatus",
      "restores",
      "scan",
      "transactGetItems",
    ]);
    assert.deepEqual(mutation, [
      "backupTable",
      "batchWriteItem",
      "createTable",
      "deleteBackup",
      "deleteItem",
      "deleteTable",
      "putItem",
      "restoreTable",
      "restoreTableFromBackup",
      "setRecoveryWindow",
      "transactWriteItems",
      "updateItem",
      "updateTable",
    ]);
  });

  it("the depth limit refuses deep documents, through fragments too", () => {
    const schema = buildSchema(typeDefs);
    const rule = depthLimitRule(3);
    const ok = parse('{ describeTable(name: "t") { partitionKey { name } } }');
    assert.deepEqual(validate(schema, ok, [rule]), []);
    const deep = parse(`
      query { describeTable(name: "t") { ...A } }
      fragment A on Table { globalIndexes { partitionKey { name } } }
    `);
    const errors = validate(schema, deep, [rule]);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.extensions.code, "VALIDATION");
  });
});

const offsets = fc.array(
  fc.option(fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }), { nil: undefined }),
  {
    maxLength: 6,
  },
);
const token = fc
  .array(fc.tuple(fc.constantFrom("logkv.catalog", "logkv.table.a.0", "t-1"), offsets), {
    maxLength: 3,
  })
  .map((topics) =>
    topics.reduce((t, [topic, o]) => t.merge(SessionToken.of(topic, o)), SessionToken.empty),
  );

describe("session tokens", () => {
  it("decode(encode(t)) equals t, and encoding is deterministic", () => {
    fc.assert(
      fc.property(token, (t) => {
        const text = t.encode();
        assert.equal(SessionToken.decode(text).encode(), text);
      }),
    );
  });

  it("merge is the per-partition maximum: commutative, associative, idempotent", () => {
    fc.assert(
      fc.property(token, token, token, (a, b, c) => {
        assert.equal(a.merge(b).encode(), b.merge(a).encode());
        assert.equal(a.merge(b).merge(c).encode(), a.merge(b.merge(c)).encode());
        assert.equal(a.merge(a).encode(), a.encode());
        for (const p of [0, 1, 2, 5]) {
          const m = a.merge(b).offset("t-1", p);
          const x = a.offset("t-1", p);
          const y = b.offset("t-1", p);
          assert.equal(m, x > y ? x : y);
        }
      }),
    );
  });

  it("refuses garbage with INVALID_ARGUMENT", () => {
    const bad = [
      "garbage",
      "v1.!!!",
      "v1." + Buffer.from('{"a":1}').toString("base64url"),
      "v1." + Buffer.from('[["t",[[0,"-1"]]]]').toString("base64url"),
      "v1." + Buffer.from('[["t",[[-1,"1"]]]]').toString("base64url"),
      "v1." + Buffer.from('[["bad topic",[[0,"1"]]]]').toString("base64url"),
      "v1." + "A".repeat(70_000),
    ];
    for (const text of bad) {
      assert.throws(
        () => SessionToken.decode(text),
        (e) => isDbError(e, "INVALID_ARGUMENT"),
      );
    }
  });
});
