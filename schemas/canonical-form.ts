// Avro schema JSON handling that must follow the specification to the letter, because its
// output is hashed into the fingerprints every published event carries:
//
// - parsingCanonicalForm(schema): the spec's "Parsing Canonical Form" (PRIMITIVES,
//   FULLNAMES, STRIP, ORDER, STRINGS, INTEGERS, WHITESPACE). Tested against the vectors of
//   the Avro project's share/test/data/schema-tests.txt.
// - composeSchema(root, parts): one self-contained schema out of several .avsc files. The
//   files of schemas/avro/ hold one named type each and refer to the others by full name
//   (e.g. "logkv.AttributeValue"); the writer schema of a published version inlines each
//   referenced definition at its first use, depth first, as the spec requires of a schema
//   that travels alone. Names are made full and "namespace" attributes dropped; docs and
//   defaults are kept (the canonical form strips them, resolution needs the defaults).

import { assert } from "../services/shared/assert.js";

/** Avro schema JSON as parsed from an .avsc file. */
export type SchemaJson = string | SchemaJson[] | { [attribute: string]: unknown };

const PRIMITIVES = new Set([
  "null",
  "boolean",
  "int",
  "long",
  "float",
  "double",
  "bytes",
  "string",
]);
const NAMED = new Set(["record", "error", "enum", "fixed"]);

export function isPrimitive(name: string): boolean {
  return PRIMITIVES.has(name);
}

/** The full name of a type reference or definition per the spec's namespace rules. */
export function fullName(name: string, namespace: string | undefined, enclosing: string): string {
  if (name.includes(".")) return name;
  const space = namespace !== undefined ? namespace : enclosing;
  return space === "" ? name : `${space}.${name}`;
}

function namespaceOf(fullNameValue: string): string {
  const dot = fullNameValue.lastIndexOf(".");
  return dot < 0 ? "" : fullNameValue.slice(0, dot);
}

function stringAttribute(schema: { [attribute: string]: unknown }, key: string): string {
  const value = schema[key];
  assert(typeof value === "string", `schema attribute ${key} must be a string`);
  return value;
}

function optionalNamespace(schema: { [attribute: string]: unknown }): string | undefined {
  const namespace = schema.namespace;
  if (namespace === undefined || namespace === null) return undefined;
  assert(typeof namespace === "string", "schema namespace must be a string");
  return namespace;
}

function fieldsOf(schema: { [attribute: string]: unknown }): { [attribute: string]: unknown }[] {
  const fields = schema.fields;
  assert(Array.isArray(fields), "record fields must be an array");
  return fields as { [attribute: string]: unknown }[];
}

/** The spec's Parsing Canonical Form of `schema`, the input of its fingerprint. */
export function parsingCanonicalForm(schema: SchemaJson, enclosing = ""): string {
  if (typeof schema === "string") {
    return JSON.stringify(isPrimitive(schema) ? schema : fullName(schema, undefined, enclosing));
  }
  if (Array.isArray(schema)) {
    return `[${schema.map((branch) => parsingCanonicalForm(branch, enclosing)).join(",")}]`;
  }
  const type = schema.type;
  if (typeof type !== "string") return parsingCanonicalForm(type as SchemaJson, enclosing);
  if (isPrimitive(type)) return JSON.stringify(type);
  if (type === "array") {
    const items = parsingCanonicalForm(schema.items as SchemaJson, enclosing);
    return `{"type":"array","items":${items}}`;
  }
  if (type === "map") {
    const values = parsingCanonicalForm(schema.values as SchemaJson, enclosing);
    return `{"type":"map","values":${values}}`;
  }
  assert(NAMED.has(type), `unknown schema type ${type}`);
  const name = fullName(stringAttribute(schema, "name"), optionalNamespace(schema), enclosing);
  const head = `"name":${JSON.stringify(name)},"type":${JSON.stringify(type)}`;
  if (type === "enum") return `{${head},"symbols":${JSON.stringify(schema.symbols)}}`;
  if (type === "fixed") return `{${head},"size":${String(Number(schema.size))}}`;
  const inner = namespaceOf(name);
  const fields = fieldsOf(schema).map((field) => {
    const fieldName = JSON.stringify(stringAttribute(field, "name"));
    return `{"name":${fieldName},"type":${parsingCanonicalForm(field.type as SchemaJson, inner)}}`;
  });
  return `{${head},"fields":[${fields.join(",")}]}`;
}

interface Definition {
  schema: { [attribute: string]: unknown };
  enclosing: string;
}

/** Every named type `schema` defines (nested ones too), by full name. */
function collectDefinitions(
  schema: SchemaJson,
  enclosing: string,
  into: Map<string, Definition>,
): void {
  if (typeof schema === "string") return;
  if (Array.isArray(schema)) {
    for (const branch of schema) collectDefinitions(branch, enclosing, into);
    return;
  }
  const type = schema.type;
  if (typeof type !== "string") return collectDefinitions(type as SchemaJson, enclosing, into);
  if (type === "array") return collectDefinitions(schema.items as SchemaJson, enclosing, into);
  if (type === "map") return collectDefinitions(schema.values as SchemaJson, enclosing, into);
  if (!NAMED.has(type)) return;
  const name = fullName(stringAttribute(schema, "name"), optionalNamespace(schema), enclosing);
  assert(!into.has(name), `type ${name} is defined twice`);
  into.set(name, { schema, enclosing });
  if (type !== "record" && type !== "error") return;
  for (const field of fieldsOf(schema)) {
    collectDefinitions(field.type as SchemaJson, namespaceOf(name), into);
  }
}

/**
 * One self-contained schema: `root` with every type it names, from `root` itself or from
 * `parts`, inlined at its first use. Throws on a name that no part defines or that two define.
 */
export function composeSchema(root: SchemaJson, parts: readonly SchemaJson[]): SchemaJson {
  const definitions = new Map<string, Definition>();
  for (const part of [...parts, root]) collectDefinitions(part, "", definitions);
  const emitted = new Set<string>();

  const expand = (schema: SchemaJson, enclosing: string): SchemaJson => {
    if (typeof schema === "string") {
      if (isPrimitive(schema)) return schema;
      const name = fullName(schema, undefined, enclosing);
      if (emitted.has(name)) return name;
      const definition = definitions.get(name);
      assert(definition !== undefined, `undefined type name ${name}`);
      return expand(definition.schema, definition.enclosing);
    }
    if (Array.isArray(schema)) return schema.map((branch) => expand(branch, enclosing));
    const type = schema.type;
    assert(typeof type === "string", "composed schemas need a string type attribute");
    if (type === "array")
      return { ...schema, items: expand(schema.items as SchemaJson, enclosing) };
    if (type === "map")
      return { ...schema, values: expand(schema.values as SchemaJson, enclosing) };
    if (!NAMED.has(type)) return { ...schema };
    const name = fullName(stringAttribute(schema, "name"), optionalNamespace(schema), enclosing);
    if (emitted.has(name)) return name;
    emitted.add(name);
    const { namespace: _namespace, ...rest } = schema;
    const out: { [attribute: string]: unknown } = { ...rest, name };
    if (type === "record" || type === "error") {
      out.fields = fieldsOf(schema).map((field) => ({
        ...field,
        type: expand(field.type as SchemaJson, namespaceOf(name)),
      }));
    }
    return out;
  };
  return expand(root, "");
}
