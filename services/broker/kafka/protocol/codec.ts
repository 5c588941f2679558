// Schema-interpreting codec for every Kafka message in generated/specs.ts.
//
// Why interpret instead of hand-writing one codec per API version: the official JSON schemas
// describe every version exactly, so one small interpreter covers ~30 APIs and all their
// versions, and a schema change needs no code change. The interpreter does not walk the JSON
// per call: the first use of a (message, version) compiles its fields into a tree of closures
// (a Compiled struct), cached for the life of the process, so encoding is a loop over
// pre-resolved field codecs.
//
// Object conventions (other modules rely on them):
//   - keys are the schema field names with the first letter lowercased (TopicName -> topicName);
//   - int64 -> bigint; int8/int16/int32/uint16/float64 -> number; bool -> boolean;
//     string -> string; bytes -> Buffer; records -> Buffer | null; uuid -> 16-byte Buffer;
//     nullable values -> null;
//   - decoding omits fields absent at that version; tagged fields absent on the wire decode
//     to their defaults; unknown tags are skipped;
//   - encoding ignores fields absent at that version and writes a default for a missing field
//     (the schema default, else 0 / false / "" / [] / empty Buffer, or null when nullable);
//     a tagged field is written only when it differs from its default.
//
// Flexible versions (KIP-482) use compact strings, bytes and arrays, and end every struct with
// a tagged fields section. RequestHeader's ClientId opts out ("flexibleVersions": "none").
// ConsumerProtocol* data messages are encoded without the int16 version prefix that Kafka's
// ConsumerProtocol writes in front of them; callers add it.
import { Writer } from "./encoder.js";
import { ProtocolDecodeError, Reader } from "./decoder.js";
import { MESSAGE_SPECS, type FieldSpec, type MessageSpec } from "./generated/specs.js";
import type { RequestBodyByApiKey, ResponseBodyByApiKey } from "./generated/types.js";

export type MessageBody = Record<string, unknown>;
export type RequestBody<K extends number> = K extends keyof RequestBodyByApiKey
  ? RequestBodyByApiKey[K]
  : MessageBody;
export type ResponseBody<K extends number> = K extends keyof ResponseBodyByApiKey
  ? ResponseBodyByApiKey[K]
  : MessageBody;

type Encode = (w: Writer, value: unknown) => void;
type Decode = (r: Reader) => unknown;

/** One value type at one version: how to write it, read it and make its default. */
interface ValueCodec {
  readonly encode: Encode;
  readonly decode: Decode;
  /** Smallest possible encoding, used to bound hostile array counts. */
  readonly minBytes: number;
}

interface CompiledField {
  readonly key: string;
  readonly codec: ValueCodec;
  readonly makeDefault: () => unknown;
  readonly tag: number | null;
}

/** A struct (or whole message) compiled for one version. */
interface CompiledStruct {
  readonly encode: Encode;
  readonly decode: (r: Reader) => MessageBody;
  readonly makeDefault: () => MessageBody;
  readonly minBytes: number;
}

// ---------------------------------------------------------------------------------------------
// Version ranges

const MAX_VERSION = 32767;

/** Parses a schema version string ("3+", "0-2", "5", "none"); null means no version. */
export function parseVersionRange(text: string | undefined): [number, number] | null {
  if (text === undefined || text === "none") return null;
  if (text.endsWith("+")) return [Number(text.slice(0, -1)), MAX_VERSION];
  const dash = text.indexOf("-");
  if (dash < 0) return [Number(text), Number(text)];
  return [Number(text.slice(0, dash)), Number(text.slice(dash + 1))];
}

export function inVersionRange(text: string | undefined, version: number): boolean {
  const range = parseVersionRange(text);
  return range !== null && version >= range[0] && version <= range[1];
}

// ---------------------------------------------------------------------------------------------
// Scalars

function fixed(
  minBytes: number,
  encode: (w: Writer, v: never) => void,
  decode: Decode,
): ValueCodec {
  return { encode: encode as Encode, decode, minBytes };
}

const SCALARS: Record<string, ValueCodec> = {
  bool: fixed(
    1,
    (w, v: boolean) => w.bool(v),
    (r) => r.bool(),
  ),
  int8: fixed(
    1,
    (w, v: number) => w.int8(v),
    (r) => r.int8(),
  ),
  int16: fixed(
    2,
    (w, v: number) => w.int16(v),
    (r) => r.int16(),
  ),
  uint16: fixed(
    2,
    (w, v: number) => w.uint16(v),
    (r) => r.uint16(),
  ),
  int32: fixed(
    4,
    (w, v: number) => w.int32(v),
    (r) => r.int32(),
  ),
  uint32: fixed(
    4,
    (w, v: number) => w.uint32(v),
    (r) => r.uint32(),
  ),
  int64: fixed(
    8,
    (w, v: bigint) => w.int64(v),
    (r) => r.int64(),
  ),
  float64: fixed(
    8,
    (w, v: number) => w.float64(v),
    (r) => r.float64(),
  ),
  uuid: fixed(
    16,
    (w, v: Buffer) => w.uuid(v),
    (r) => r.uuid(),
  ),
};

function stringCodec(flexible: boolean, nullable: boolean): ValueCodec {
  if (flexible) {
    return nullable
      ? fixed(
          1,
          (w, v: string | null) => w.compactNullableString(v),
          (r) => r.compactNullableString(),
        )
      : fixed(
          1,
          (w, v: string) => w.compactString(v),
          (r) => r.compactString(),
        );
  }
  return nullable
    ? fixed(
        2,
        (w, v: string | null) => w.nullableString(v),
        (r) => r.nullableString(),
      )
    : fixed(
        2,
        (w, v: string) => w.string(v),
        (r) => r.string(),
      );
}

function bytesCodec(flexible: boolean, nullable: boolean): ValueCodec {
  if (flexible) {
    return nullable
      ? fixed(
          1,
          (w, v: Buffer | null) => w.compactNullableBytes(v),
          (r) => r.compactNullableBytes(),
        )
      : fixed(
          1,
          (w, v: Buffer) => w.compactBytes(v),
          (r) => r.compactBytes(),
        );
  }
  return nullable
    ? fixed(
        4,
        (w, v: Buffer | null) => w.nullableBytes(v),
        (r) => r.nullableBytes(),
      )
    : fixed(
        4,
        (w, v: Buffer) => w.bytes(v),
        (r) => r.bytes(),
      );
}

function arrayCodec(item: ValueCodec, flexible: boolean, nullable: boolean): ValueCodec {
  const itemMin = Math.max(1, item.minBytes);
  const encode: Encode = (w, value) => {
    const items = value as unknown[] | null;
    if (items === null) {
      if (flexible) w.unsignedVarint(0);
      else w.int32(-1);
      return;
    }
    if (flexible) w.unsignedVarint(items.length + 1);
    else w.int32(items.length);
    for (const v of items) item.encode(w, v);
  };
  const decode: Decode = (r) => {
    const count = flexible
      ? r.compactArrayCount(nullable, itemMin)
      : r.arrayCount(nullable, itemMin);
    if (count === null) return null;
    const out = new Array<unknown>(count);
    for (let i = 0; i < count; i++) out[i] = item.decode(r);
    return out;
  };
  return { encode, decode, minBytes: flexible ? 1 : 4 };
}

/** A nullable struct (not array) is written with an int8 marker: -1 null, 1 present. */
function nullableStructCodec(struct: ValueCodec): ValueCodec {
  return {
    encode: (w, v) => {
      if (v === null) w.int8(-1);
      else struct.encode(w.int8(1), v);
    },
    decode: (r) => {
      const at = r.offset;
      const marker = r.int8();
      if (marker < 0) return null;
      if (marker !== 1) r.fail(`invalid struct marker ${marker}`, at);
      return struct.decode(r);
    },
    minBytes: 1,
  };
}

// ---------------------------------------------------------------------------------------------
// Defaults

/**
 * The default of a scalar: the schema's default text parsed for the type, else null when
 * nullable at this version, else the type's zero value.
 */
function scalarDefault(type: string, text: string | undefined, nullable: boolean): unknown {
  if (nullable && (text === undefined || text === "null")) return null;
  const t = text === undefined || text === "null" ? undefined : text;
  switch (type) {
    case "bool":
      return t === "true";
    case "int64":
      return t === undefined ? 0n : BigInt(t);
    case "string":
      return t ?? "";
    case "bytes":
    case "uuid":
      return Buffer.alloc(type === "uuid" ? 16 : 0);
    case "records":
      return Buffer.alloc(0);
    default:
      return t === undefined ? 0 : Number(t);
  }
}

// ---------------------------------------------------------------------------------------------
// Compilation

interface CompileContext {
  readonly message: MessageSpec;
  readonly version: number;
  readonly flexible: boolean;
}

function lowerFirst(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

function structFields(ctx: CompileContext, field: FieldSpec, typeName: string): FieldSpec[] {
  if (field.fields !== undefined) return [...field.fields];
  const common = ctx.message.commonStructs?.find((s) => s.name === typeName);
  if (common === undefined) {
    throw new Error(`${ctx.message.name}: field ${field.name} has unknown type ${typeName}`);
  }
  return [...common.fields];
}

function compileField(ctx: CompileContext, field: FieldSpec): CompiledField {
  const v = ctx.version;
  const nullable = inVersionRange(field.nullableVersions, v);
  const flexible =
    field.flexibleVersions === undefined ? ctx.flexible : inVersionRange(field.flexibleVersions, v);
  const isArray = field.type.startsWith("[]");
  const base = isArray ? field.type.slice(2) : field.type;
  let item: ValueCodec;
  let itemDefault: () => unknown;
  const scalar = SCALARS[base];
  if (scalar !== undefined) {
    item = scalar;
    const d = scalarDefault(base, isArray ? undefined : field.default, nullable && !isArray);
    itemDefault = base === "uuid" ? () => Buffer.alloc(16) : () => d;
  } else if (base === "string") {
    item = stringCodec(flexible, nullable && !isArray);
    const d = scalarDefault(base, isArray ? undefined : field.default, nullable && !isArray);
    itemDefault = () => d;
  } else if (base === "bytes" || base === "records") {
    item = bytesCodec(flexible, nullable && !isArray);
    itemDefault = () => scalarDefault(base, field.default, nullable && !isArray);
  } else {
    const struct = compileStruct(ctx, structFields(ctx, field, base));
    item = struct;
    itemDefault = struct.makeDefault;
    if (nullable && !isArray) {
      item = nullableStructCodec(struct);
      if (field.default === undefined || field.default === "null") itemDefault = () => null;
    }
  }
  const tag = inVersionRange(field.taggedVersions, v) && ctx.flexible ? (field.tag ?? null) : null;
  const key = lowerFirst(field.name);
  if (!isArray) return { key, codec: item, makeDefault: itemDefault, tag };
  const codec = arrayCodec(item, flexible, nullable);
  const nullDefault = nullable && (field.default === undefined || field.default === "null");
  const makeDefault = nullDefault ? () => null : () => [];
  return { key, codec, makeDefault, tag };
}

function compileStruct(ctx: CompileContext, fields: readonly FieldSpec[]): CompiledStruct {
  const present = fields.filter((f) => inVersionRange(f.versions, ctx.version));
  const compiled = present.map((f) => compileField(ctx, f));
  const regular = compiled.filter((f) => f.tag === null);
  const tagged = compiled.filter((f) => f.tag !== null).sort((a, b) => a.tag! - b.tag!);
  const byTag = new Map(tagged.map((f) => [f.tag!, f]));
  const flexible = ctx.flexible;

  const makeDefault = (): MessageBody => {
    const obj: MessageBody = {};
    for (const f of compiled) obj[f.key] = f.makeDefault();
    return obj;
  };
  const encode = (w: Writer, value: unknown): void => {
    const obj = (value ?? {}) as MessageBody;
    for (const f of regular) {
      const v = obj[f.key];
      f.codec.encode(w, v === undefined ? f.makeDefault() : v);
    }
    if (flexible) encodeTagged(w, obj, tagged);
  };
  const decode = (r: Reader): MessageBody => {
    const obj: MessageBody = {};
    for (const f of regular) obj[f.key] = f.codec.decode(r);
    if (!flexible) return obj;
    for (const f of tagged) obj[f.key] = f.makeDefault();
    r.taggedFields((tag, fieldReader) => {
      const f = byTag.get(tag);
      if (f === undefined) return false;
      obj[f.key] = f.codec.decode(fieldReader);
      return true;
    });
    return obj;
  };
  const minBytes = regular.reduce((sum, f) => sum + f.codec.minBytes, flexible ? 1 : 0);
  return { encode, decode, makeDefault, minBytes };
}

function encodeTagged(w: Writer, obj: MessageBody, tagged: readonly CompiledField[]): void {
  if (tagged.length === 0) {
    w.emptyTaggedFields();
    return;
  }
  const out: { tag: number; data: Buffer }[] = [];
  for (const f of tagged) {
    const v = obj[f.key];
    if (v === undefined || deepEqual(v, f.makeDefault())) continue;
    const sub = new Writer(64);
    f.codec.encode(sub, v);
    out.push({ tag: f.tag!, data: sub.toBuffer() });
  }
  w.taggedFields(out);
}

/** Structural equality over decoded values (bigint, Buffer, arrays, plain objects). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) {
    return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => deepEqual(x, b[i]));
  }
  const ka = Object.keys(a);
  const bo = b as MessageBody;
  if (ka.length !== Object.keys(bo).length) return false;
  return ka.every((k) => deepEqual((a as MessageBody)[k], bo[k]));
}

// ---------------------------------------------------------------------------------------------
// Spec lookup and cache

const specsByName = new Map(MESSAGE_SPECS.map((s) => [s.name, s]));
const requestsByKey = new Map<number, MessageSpec>();
const responsesByKey = new Map<number, MessageSpec>();
for (const s of MESSAGE_SPECS) {
  if (s.type === "request" && s.apiKey !== undefined) requestsByKey.set(s.apiKey, s);
  if (s.type === "response" && s.apiKey !== undefined) responsesByKey.set(s.apiKey, s);
}
const cache = new Map<string, CompiledStruct>();

/** The spec of a message by name (e.g. "ProduceRequest", "ConsumerProtocolAssignment"). */
export function getMessageSpec(name: string): MessageSpec | undefined {
  return specsByName.get(name);
}

export function getRequestSpec(apiKey: number): MessageSpec | undefined {
  return requestsByKey.get(apiKey);
}

export function getResponseSpec(apiKey: number): MessageSpec | undefined {
  return responsesByKey.get(apiKey);
}

/** Whether `version` is within the message's validVersions. */
export function isValidVersion(spec: MessageSpec, version: number): boolean {
  return Number.isInteger(version) && inVersionRange(spec.validVersions, version);
}

/** Whether `version` of the message uses flexible (KIP-482) encodings. */
export function isFlexibleVersion(spec: MessageSpec, version: number): boolean {
  return inVersionRange(spec.flexibleVersions, version);
}

function compiled(spec: MessageSpec, version: number): CompiledStruct {
  const key = `${spec.name}:${version}`;
  let c = cache.get(key);
  if (c === undefined) {
    const ctx = { message: spec, version, flexible: isFlexibleVersion(spec, version) };
    c = compileStruct(ctx, spec.fields);
    cache.set(key, c);
  }
  return c;
}

function forDecode(spec: MessageSpec | undefined, what: string, version: number, r: Reader) {
  if (spec === undefined) return r.fail(`unknown message ${what}`);
  if (!isValidVersion(spec, version)) return r.fail(`${spec.name} has no version ${version}`);
  return compiled(spec, version);
}

function forEncode(spec: MessageSpec | undefined, what: string, version: number) {
  if (spec === undefined) throw new RangeError(`unknown message ${what}`);
  if (!isValidVersion(spec, version)) {
    throw new RangeError(`${spec.name} has no version ${version}`);
  }
  return compiled(spec, version);
}

// ---------------------------------------------------------------------------------------------
// Public API

export function decodeRequestBody<K extends number>(
  apiKey: K,
  version: number,
  reader: Reader,
): RequestBody<K> {
  const c = forDecode(requestsByKey.get(apiKey), `request ${apiKey}`, version, reader);
  return c.decode(reader) as RequestBody<K>;
}

export function encodeRequestBody<K extends number>(
  apiKey: K,
  version: number,
  body: RequestBody<K>,
  writer: Writer,
): void {
  forEncode(requestsByKey.get(apiKey), `request ${apiKey}`, version).encode(
    writer,
    body as unknown,
  );
}

export function decodeResponseBody<K extends number>(
  apiKey: K,
  version: number,
  reader: Reader,
): ResponseBody<K> {
  const c = forDecode(responsesByKey.get(apiKey), `response ${apiKey}`, version, reader);
  return c.decode(reader) as ResponseBody<K>;
}

export function encodeResponseBody<K extends number>(
  apiKey: K,
  version: number,
  body: ResponseBody<K>,
  writer: Writer,
): void {
  forEncode(responsesByKey.get(apiKey), `response ${apiKey}`, version).encode(
    writer,
    body as unknown,
  );
}

/** Decodes any message by spec name (headers, requests, responses, ConsumerProtocol*). */
export function decodeMessage<T = MessageBody>(name: string, version: number, reader: Reader): T {
  return forDecode(specsByName.get(name), name, version, reader).decode(reader) as T;
}

/** Encodes any message by spec name (headers, requests, responses, ConsumerProtocol*). */
export function encodeMessage(name: string, version: number, body: object, writer: Writer): void {
  forEncode(specsByName.get(name), name, version).encode(writer, body);
}

/** A message's default body at a version: every present field set to its default. */
export function defaultMessage(name: string, version: number): MessageBody {
  return forEncode(specsByName.get(name), name, version).makeDefault();
}

export { ProtocolDecodeError };
