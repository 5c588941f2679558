// fast-check arbitraries generated from the message specs themselves, so every field of every
// version of every message is exercised without writing one generator per API. The generator
// follows the codec's conventions: only fields present at the version, lowercased keys,
// null only where the field is nullable at that version, int64 as bigint.
import fc from "fast-check";
import {
  MESSAGE_SPECS,
  type FieldSpec,
  type MessageSpec,
} from "../../../services/broker/kafka/protocol/generated/specs.js";
import { advertisedRange } from "../../../services/broker/kafka/protocol/api-versions.js";
import {
  inVersionRange,
  parseVersionRange,
  type MessageBody,
} from "../../../services/broker/kafka/protocol/codec.js";

const ARRAY_LENGTH_MAX = 3;

const buffer = (min: number, max: number): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((a) => Buffer.from(a));

const SCALARS: Record<string, fc.Arbitrary<unknown>> = {
  bool: fc.boolean(),
  int8: fc.integer({ min: -128, max: 127 }),
  int16: fc.integer({ min: -32768, max: 32767 }),
  uint16: fc.integer({ min: 0, max: 65535 }),
  int32: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  uint32: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  int64: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  float64: fc.double(),
  string: fc.string({ unit: "grapheme", maxLength: 12 }),
  bytes: buffer(0, 24),
  records: buffer(0, 24),
  uuid: buffer(16, 16),
};

function lowerFirst(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

function fieldArbitrary(
  spec: MessageSpec,
  field: FieldSpec,
  version: number,
): fc.Arbitrary<unknown> {
  const nullable = inVersionRange(field.nullableVersions, version);
  const isArray = field.type.startsWith("[]");
  const base = isArray ? field.type.slice(2) : field.type;
  let item = SCALARS[base];
  if (item === undefined) {
    const fields = field.fields ?? spec.commonStructs?.find((s) => s.name === base)?.fields;
    if (fields === undefined) throw new Error(`${spec.name}: no struct ${base}`);
    item = structArbitrary(spec, fields, version);
  }
  const value = isArray ? fc.array(item, { maxLength: ARRAY_LENGTH_MAX }) : item;
  return nullable ? fc.option(value, { nil: null, freq: 4 }) : value;
}

function structArbitrary(
  spec: MessageSpec,
  fields: readonly FieldSpec[],
  version: number,
): fc.Arbitrary<MessageBody> {
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of fields) {
    if (!inVersionRange(f.versions, version)) continue;
    model[lowerFirst(f.name)] = fieldArbitrary(spec, f, version);
  }
  // fc.record builds null-prototype objects; the codec builds plain ones.
  return fc.record(model).map((o) => ({ ...o }));
}

/** Arbitrary bodies of `spec` at `version`. */
export function messageArbitrary(spec: MessageSpec, version: number): fc.Arbitrary<MessageBody> {
  return structArbitrary(spec, spec.fields, version);
}

/**
 * The versions to test for a message: from its advertised minimum (validVersions minimum when
 * it is not advertised) to its validVersions maximum, so flexible versions are covered too.
 */
export function versionsToTest(spec: MessageSpec): number[] {
  const valid = parseVersionRange(spec.validVersions);
  if (valid === null) return [];
  const advertised =
    spec.apiKey !== undefined && (spec.type === "request" || spec.type === "response")
      ? advertisedRange(spec.apiKey)
      : undefined;
  const min = advertised?.minVersion ?? valid[0];
  const out: number[] = [];
  for (let v = min; v <= valid[1]; v++) out.push(v);
  return out;
}

export const ALL_SPECS: readonly MessageSpec[] = MESSAGE_SPECS;
