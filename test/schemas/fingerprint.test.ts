// Goal: the fingerprints in logkv's single-object headers are the Avro specification's
// CRC-64-AVRO of the Parsing Canonical Form, so any Avro implementation can resolve them.
// Method: the canonical forms and fingerprints of the Avro project's own test vectors
// (apache/avro share/test/data/schema-tests.txt, cross-checked there against Java's direct
// implementation), the spec's fingerprint of the empty string, and for every published
// logkv schema, agreement between our canonical form and avsc's.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import avro from "avsc";
import { parsingCanonicalForm, type SchemaJson } from "../../schemas/canonical-form.js";
import { crc64Avro, fingerprintOfCanonicalForm } from "../../schemas/fingerprint.js";
import { PUBLISHED, composeVersion, type RecordKind } from "../../schemas/avro/published.js";
import { buildType } from "../../schemas/avro-types.js";

/** [input, canonical form, signed 64-bit fingerprint or null when the file gives none]. */
const VECTORS: [string, string, string | null][] = [
  ['"null"', '"null"', "7195948357588979594"],
  ['{"type":"null"}', '"null"', null],
  ['"boolean"', '"boolean"', "-6970731678124411036"],
  ['{"type":"boolean"}', '"boolean"', null],
  ['"int"', '"int"', "8247732601305521295"],
  ['{"type":"int"}', '"int"', null],
  ['"long"', '"long"', "-3434872931120570953"],
  ['"float"', '"float"', "5583340709985441680"],
  ['"double"', '"double"', "-8181574048448539266"],
  ['"bytes"', '"bytes"', "5746618253357095269"],
  ['"string"', '"string"', "-8142146995180207161"],
  ['{"type":"string"}', '"string"', null],
  ["[  ]", "[]", "-1241056759729112623"],
  ['[ "int"  ]', '["int"]', "-5232228896498058493"],
  ['[ "int" , {"type":"boolean"} ]', '["int","boolean"]', "5392556393470105090"],
  [
    '{"fields":[], "type":"record", "name":"foo"}',
    '{"name":"foo","type":"record","fields":[]}',
    "-4824392279771201922",
  ],
  [
    '{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}',
    '{"name":"x.y.foo","type":"record","fields":[]}',
    "5916914534497305771",
  ],
  [
    '{"fields":[], "type":"record", "name":"a.b.foo", "namespace":"x.y"}',
    '{"name":"a.b.foo","type":"record","fields":[]}',
    "-4616218487480524110",
  ],
  [
    '{"fields":[], "type":"record", "name":"foo", "doc":"foo", "aliases":["foo","bar"]}',
    '{"name":"foo","type":"record","fields":[]}',
    "-4824392279771201922",
  ],
  [
    '{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}',
    '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}',
    "7843277075252814651",
  ],
  [
    `{ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":"true"},
                 {"order":"descending","name":"f2","doc":"Hello","type":"int"}],
       "type":"record", "name":"foo"}`,
    '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},' +
      '{"name":"f2","type":"int"}]}',
    "-4860222112080293046",
  ],
  [
    '{"type":"enum", "name":"foo", "symbols":["A1"]}',
    '{"name":"foo","type":"enum","symbols":["A1"]}',
    "-6342190197741309591",
  ],
  [
    '{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", "symbols":["A1", "A2"]}',
    '{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}',
    "-4448647247586288245",
  ],
  [
    '{"name":"foo","type":"fixed","size":15}',
    '{"name":"foo","type":"fixed","size":15}',
    "1756455273707447556",
  ],
  [
    '{"namespace":"x.y.z", "type":"fixed", "name":"foo", "doc":"foo bar", "size":32}',
    '{"name":"x.y.z.foo","type":"fixed","size":32}',
    "-3064184465700546786",
  ],
  [
    '{ "items":{"type":"null"}, "type":"array"}',
    '{"type":"array","items":"null"}',
    "-589620603366471059",
  ],
  [
    '{ "values":"string", "type":"map"}',
    '{"type":"map","values":"string"}',
    "-8732877298790414990",
  ],
  [
    `{"name":"PigValue","type":"record",
      "fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}`,
    '{"name":"PigValue","type":"record",' +
      '"fields":[{"name":"value","type":["null","int","long","PigValue"]}]}',
    "-1759257747318642341",
  ],
];

describe("Parsing Canonical Form and CRC-64-AVRO", () => {
  it("the empty string fingerprints to the spec's EMPTY constant", () => {
    assert.equal(crc64Avro(new Uint8Array(0)), 0xc15d213aa4d7a795n);
  });

  it("matches every vector of the Avro project's schema-tests.txt", () => {
    for (const [input, canonical, fingerprint] of VECTORS) {
      const form = parsingCanonicalForm(JSON.parse(input) as SchemaJson);
      assert.equal(form, canonical, input);
      if (fingerprint === null) continue;
      const signed = BigInt.asIntN(64, fingerprintOfCanonicalForm(form));
      assert.equal(signed.toString(), fingerprint, input);
    }
  });

  it("agrees with avsc's canonical schema for every published logkv schema", () => {
    for (const kind of Object.keys(PUBLISHED) as RecordKind[]) {
      for (const published of PUBLISHED[kind]) {
        const { schema } = composeVersion(published);
        const ours = parsingCanonicalForm(schema);
        assert.equal(
          JSON.stringify(buildType(schema).schema()),
          ours,
          `${kind} v${published.version}`,
        );
        assert.equal(JSON.stringify(avro.Type.forSchema(JSON.parse(ours)).schema()), ours);
      }
    }
  });
});
