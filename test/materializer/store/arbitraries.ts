// Generators and naive reference orderings for key parts, shared by the store tests. The
// number generator builds canonical decimals from digits and an exponent without using the
// codec, and compareNumbers orders them as scaled BigInts, so the codec is checked against
// an independent model.
import fc from "fast-check";
import type { KeyPart, KeyValue } from "../../../materializer/store/key-codec.js";

export type PartKind = "N" | "S" | "B" | "name" | "uint32" | "int64" | "space";

// DynamoDB's magnitudes are 1E-130 .. <1E126, so 0.d1d2... * 10^E has E in -129..126.
const EXPONENT_MIN = -129;
const EXPONENT_MAX = 126;

const digit = fc.integer({ min: 0, max: 9 }).map(String);
const nonZeroDigit = fc.integer({ min: 1, max: 9 }).map(String);

const significantDigits = fc
  .tuple(nonZeroDigit, fc.array(digit, { maxLength: 36 }), nonZeroDigit, fc.boolean())
  .map(([first, middle, last, single]) => (single ? first : first + middle.join("") + last));

const exponent = fc.oneof(
  fc.integer({ min: -3, max: 4 }),
  fc.integer({ min: EXPONENT_MIN, max: EXPONENT_MAX }),
  fc.constantFrom(EXPONENT_MIN, EXPONENT_MAX),
);

function formatNumber(negative: boolean, digits: string, e: number): string {
  let text: string;
  if (e <= 0) text = `0.${"0".repeat(-e)}${digits}`;
  else if (digits.length <= e) text = digits + "0".repeat(e - digits.length);
  else text = `${digits.slice(0, e)}.${digits.slice(e)}`;
  return negative ? `-${text}` : text;
}

/** Random canonical decimals: zero, small and huge, integers and fractions, both signs. */
export const numberArbitrary: fc.Arbitrary<string> = fc.oneof(
  { weight: 1, arbitrary: fc.constant("0") },
  {
    weight: 3,
    arbitrary: fc.integer({ min: -1000, max: 1000 }).map((n) => String(n)),
  },
  {
    weight: 8,
    arbitrary: fc
      .tuple(fc.boolean(), significantDigits, exponent)
      .map(([negative, digits, e]) => formatNumber(negative, digits, e)),
  },
);

// Strings heavy in the bytes the escaping treats specially (00, 01, FF) and in multi-byte
// characters, plus arbitrary code points.
const trickyString = fc.string({
  unit: fc.constantFrom("\u0000", "\u0001", "a", "b", "\u00ff", "\ufeff", "\uffff", "😀"),
  maxLength: 6,
});
export const stringArbitrary = fc.oneof(trickyString, fc.string({ unit: "binary" }));

const trickyBytes = fc.array(fc.constantFrom(0x00, 0x01, 0x02, 0xfe, 0xff), { maxLength: 6 });
export const bytesArbitrary = fc
  .oneof(
    trickyBytes,
    fc.uint8Array({ maxLength: 12 }).map((b) => [...b]),
  )
  .map((bytes) => Buffer.from(bytes));

export function keyPartArbitrary(kind: PartKind): fc.Arbitrary<KeyPart> {
  switch (kind) {
    case "N":
      return numberArbitrary.map((N) => ({ N }));
    case "S":
      return stringArbitrary.map((S) => ({ S }));
    case "B":
      return bytesArbitrary.map((B) => ({ B }));
    case "name":
      return stringArbitrary.map((name) => ({ name }));
    case "uint32":
      return fc.oneof(fc.nat(), fc.constantFrom(0, 0xffffffff)).map((uint32) => ({ uint32 }));
    case "int64":
      return fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).map((int64) => ({ int64 }));
    case "space":
      return fc.constantFrom("a", "c", "i", "m", "z").map((space) => ({ space }));
  }
}

export function keyValueArbitrary(kind: "S" | "N" | "B"): fc.Arbitrary<KeyValue> {
  return keyPartArbitrary(kind) as fc.Arbitrary<KeyValue>;
}

const SCALE = 200;

/** A canonical decimal times 10^200, exact: every DynamoDB number fits. */
function scaled(text: string): bigint {
  const negative = text.startsWith("-");
  const [integer = "0", fraction = ""] = (negative ? text.slice(1) : text).split(".");
  const value = BigInt(integer + fraction.padEnd(SCALE, "0"));
  return negative ? -value : value;
}

export function compareNumbers(a: string, b: string): number {
  const x = scaled(a);
  const y = scaled(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

const utf8 = (s: string): Buffer => Buffer.from(s, "utf8");
const cmp = <T>(a: T, b: T): number => (a < b ? -1 : a > b ? 1 : 0);

// Different kinds order by tag; only same-kind order matters to DynamoDB, but
// self-delimiting checks compare mixed parts, so give kinds a fixed rank.
const kindRank = (part: KeyPart): number =>
  "space" in part
    ? 10
    : "name" in part
      ? 1
      : "uint32" in part
        ? 2
        : "int64" in part
          ? 3
          : "N" in part
            ? 4
            : "S" in part
              ? 5
              : 6;

/** DynamoDB's order for key values of one kind; a fixed rank between kinds. */
export function comparePart(a: KeyPart, b: KeyPart): number {
  if (kindRank(a) !== kindRank(b)) return cmp(kindRank(a), kindRank(b));
  if ("N" in a && "N" in b) return compareNumbers(a.N, b.N);
  if ("S" in a && "S" in b) return Buffer.compare(utf8(a.S), utf8(b.S));
  if ("B" in a && "B" in b) return Buffer.compare(a.B, b.B);
  if ("name" in a && "name" in b) return Buffer.compare(utf8(a.name), utf8(b.name));
  if ("uint32" in a && "uint32" in b) return cmp(a.uint32, b.uint32);
  if ("int64" in a && "int64" in b) return cmp(a.int64, b.int64);
  if ("space" in a && "space" in b) return cmp(a.space, b.space);
  throw new Error("unreachable");
}
