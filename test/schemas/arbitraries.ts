// fast-check arbitraries of attribute values, log events and stored records, shared by the
// schema tests. Values are what logkv produces: canonical decimal strings for N, well-formed
// strings, Buffers for B; map keys include the awkward ones ("__proto__", "", digits, which
// JS objects reorder) so key handling is exercised on every run.

import fc from "fast-check";
import type { AttributeMap, AttributeValue } from "../../materializer/values/attribute-value.js";
import type {
  ChangeEvent,
  GlobalSecondaryIndex,
  KeyAttribute,
  LogEvent,
  Outcome,
  Projection,
  StoredItem,
  TableChange,
  TableDefinition,
} from "../../schemas/events.js";
import { setOwn } from "../../schemas/avro-values.js";

export const text = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.string({ unit: "grapheme", maxLength: 6 }),
  fc.constantFrom("__proto__", "constructor", "", "10", "2", "a.b", "\u{1F600}"),
);

/** A canonical decimal string (materializer/DESIGN.md): "0", "-12.5", "100", "0.0001". */
export const canonicalNumber: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("0", "-12.5", "100", "0.0001", "99999999999999999999999999999999999999"),
  fc
    .tuple(fc.boolean(), fc.bigInt({ min: 1n, max: 10n ** 38n - 1n }), fc.nat({ max: 40 }))
    .map(([negative, digits, scale]) => {
      let s = digits.toString().padStart(scale + 1, "0");
      if (scale > 0) {
        s = `${s.slice(0, s.length - scale)}.${s.slice(s.length - scale)}`;
        s = s.replace(/0+$/, "").replace(/\.$/, "");
      }
      return negative ? `-${s}` : s;
    }),
);

/** fc.record with ordinary objects: decoded values have Object.prototype, as callers expect. */
function record<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true });
}

const bytes = fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a));

/** A map built with setOwn, so "__proto__" is an ordinary own key. */
export function mapOf<T>(value: fc.Arbitrary<T>, maxKeys = 4): fc.Arbitrary<{ [key: string]: T }> {
  return fc
    .uniqueArray(fc.tuple(text, value), { selector: ([key]) => key, maxLength: maxKeys })
    .map((entries) => {
      const map: { [key: string]: T } = {};
      for (const [key, v] of entries) setOwn(map, key, v);
      return map;
    });
}

const scalar: fc.Arbitrary<AttributeValue> = fc.oneof(
  text.map((S) => ({ S })),
  canonicalNumber.map((N) => ({ N })),
  bytes.map((B) => ({ B })),
  fc.boolean().map((BOOL) => ({ BOOL })),
  fc.constant({ NULL: true as const }),
  fc.array(text, { maxLength: 3 }).map((SS) => ({ SS })),
  fc.array(canonicalNumber, { maxLength: 3 }).map((NS) => ({ NS })),
  fc.array(bytes, { maxLength: 3 }).map((BS) => ({ BS })),
);

/** Attribute values nested at most `depth` lists or maps deep. */
export function attributeValue(depth = 3): fc.Arbitrary<AttributeValue> {
  if (depth === 0) return scalar;
  const inner = attributeValue(depth - 1);
  return fc.oneof(
    { weight: 3, arbitrary: scalar },
    { weight: 1, arbitrary: fc.array(inner, { maxLength: 3 }).map((L) => ({ L })) },
    { weight: 1, arbitrary: mapOf(inner, 3).map((M) => ({ M })) },
  );
}

export const item: fc.Arbitrary<AttributeMap> = mapOf(attributeValue(3), 5);
const optionalItem = fc.option(item, { nil: null });
const optionalText = fc.option(text, { nil: null });
const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });

const keyAttribute: fc.Arbitrary<KeyAttribute> = record({
  name: text,
  type: fc.constantFrom("S" as const, "N" as const, "B" as const),
});
const projection: fc.Arbitrary<Projection> = record({
  type: fc.constantFrom("ALL" as const, "KEYS_ONLY" as const, "INCLUDE" as const),
  nonKeyAttributes: fc.array(text, { maxLength: 3 }),
});
const globalIndex: fc.Arbitrary<GlobalSecondaryIndex> = record({
  name: text,
  partitionKey: keyAttribute,
  sortKey: fc.option(keyAttribute, { nil: null }),
  projection,
});

export const tableDefinition: fc.Arbitrary<TableDefinition> = record({
  name: text,
  partitionKey: keyAttribute,
  sortKey: fc.option(keyAttribute, { nil: null }),
  localIndexes: fc.array(record({ name: text, sortKey: keyAttribute, projection }), {
    maxLength: 2,
  }),
  globalIndexes: fc.array(globalIndex, { maxLength: 2 }),
  ttlAttribute: optionalText,
  partitions: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
});

const tableChange: fc.Arbitrary<TableChange> = fc.oneof(
  globalIndex.map((index) => ({ kind: "ADD_GLOBAL_INDEX" as const, index })),
  text.map((indexName) => ({ kind: "REMOVE_GLOBAL_INDEX" as const, indexName })),
  optionalText.map((ttlAttribute) => ({ kind: "SET_TTL_ATTRIBUTE" as const, ttlAttribute })),
  text.map((jobId) => ({ kind: "FINISH_RESTORE" as const, jobId })),
);

/** CreateTable v2's restore origin; absent on most tables. */
const restoreOrigin = fc.option(record({ source: text, timeMs: int64, jobId: text }), {
  nil: undefined,
});

const itemWrite = record({
  table: text,
  condition: optionalText,
  names: mapOf(text, 3),
  values: mapOf(attributeValue(2), 3),
  returnValues: fc.constantFrom(
    "NONE" as const,
    "ALL_OLD" as const,
    "UPDATED_OLD" as const,
    "ALL_NEW" as const,
    "UPDATED_NEW" as const,
  ),
  requestId: optionalText,
});

export const logEvent: fc.Arbitrary<LogEvent> = fc.oneof(
  fc
    .tuple(tableDefinition, restoreOrigin)
    .map(([table, restore]) =>
      restore === undefined
        ? { type: "CreateTable" as const, table }
        : { type: "CreateTable" as const, table, restore },
    ),
  fc
    .tuple(tableDefinition, fc.array(tableChange, { maxLength: 3 }))
    .map(([table, changes]) => ({ type: "UpdateTable" as const, table, changes })),
  text.map((table) => ({ type: "DeleteTable" as const, table })),
  fc
    .tuple(itemWrite, item, fc.option(int64, { nil: undefined }))
    .map(([w, i, restoreEpoch]) =>
      restoreEpoch === undefined
        ? { type: "PutItem" as const, ...w, item: i }
        : { type: "PutItem" as const, ...w, item: i, restoreEpoch },
    ),
  fc
    .tuple(itemWrite, item, text)
    .map(([w, key, update]) => ({ type: "UpdateItem" as const, ...w, key, update })),
  fc.tuple(itemWrite, item).map(([w, key]) => ({ type: "DeleteItem" as const, ...w, key })),
  fc
    .tuple(text, item, int64)
    .map(([table, key, expiresAtMs]) => ({ type: "TtlDelete" as const, table, key, expiresAtMs })),
  fc
    .tuple(text, int64, fc.boolean())
    .map(([table, epoch, seal]) => ({ type: "RestoreFence" as const, table, epoch, seal })),
);

export const storedItem: fc.Arbitrary<StoredItem> = record({
  attributes: item,
  version: fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }),
  lastOffset: fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }),
});

export const outcome: fc.Arbitrary<Outcome> = fc.oneof(
  optionalItem.map((attributes) => ({ status: "OK" as const, attributes })),
  optionalItem.map((i) => ({ status: "CONDITIONAL_CHECK_FAILED" as const, item: i })),
  text.map((message) => ({ status: "VALIDATION" as const, message })),
);

export const changeEvent: fc.Arbitrary<ChangeEvent> = record({
  table: text,
  partition: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  offset: fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }),
  timestampMs: int64,
  kind: fc.constantFrom(
    "PUT" as const,
    "UPDATE" as const,
    "DELETE" as const,
    "TTL_DELETE" as const,
  ),
  keys: item,
  oldImage: optionalItem,
  newImage: optionalItem,
});

/** A deep copy of `value` whose maps have their keys inserted in a rotated order. */
export function reinsertKeys(value: AttributeValue, rotation: number): AttributeValue {
  if ("L" in value) return { L: value.L.map((v) => reinsertKeys(v, rotation)) };
  if ("M" in value) return { M: reinsertItemKeys(value.M, rotation) };
  return value;
}

export function reinsertItemKeys(map: AttributeMap, rotation: number): AttributeMap {
  const keys = Object.keys(map).reverse();
  const shift = keys.length === 0 ? 0 : rotation % keys.length;
  const order = [...keys.slice(shift), ...keys.slice(0, shift)];
  const out: AttributeMap = {};
  for (const key of order) setOwn(out, key, reinsertKeys(map[key] as AttributeValue, rotation));
  return out;
}
