// Exact decimal numbers, as DynamoDB's N type holds them: up to 38 significant digits and a
// magnitude of 0 or within 1E-130 .. 9.99...9E+125. Every N value in logkv is stored as
// the canonical string defined in materializer/DESIGN.md, so two equal numbers are always
// the same string; parseDecimal is the only way user text becomes such a string.
//
// Arithmetic is exact: a number is a BigInt coefficient times a power of ten, and sums are
// computed on the aligned coefficients. Floating point never decides anything here, because
// the materializer must reach byte-identical state on every replica (ARCHITECTURE.md §1).

import { DbError } from "../../services/shared/errors.js";

/** DynamoDB keeps at most 38 significant digits. */
export const DECIMAL_DIGITS_MAX = 38;
/** The smallest non-zero magnitude is 1E-130. */
export const DECIMAL_EXPONENT_MIN = -130;
/** The largest magnitude is below 1E+126: its leading digit is at most at 10^125. */
export const DECIMAL_EXPONENT_MAX = 125;
/** Longest numeric text we read; longer input is refused before any BigInt work. */
export const DECIMAL_TEXT_LENGTH_MAX = 1024;

/** value = coefficient * 10^exponent; the coefficient carries the sign. */
interface Decimal {
  coefficient: bigint;
  exponent: number;
}

const numberPattern = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

function invalid(message: string): DbError {
  return new DbError("INVALID_ARGUMENT", message);
}

/**
 * Reads any numeric literal ("1e2", "+001.50", "-0", ".5") and returns its canonical form
 * ("100", "1.5", "0", "0.5"). Throws DbError INVALID_ARGUMENT for text that is not a number,
 * has more than 38 significant digits, or lies outside DynamoDB's range.
 */
export function parseDecimal(text: string): string {
  return formatDecimal(readDecimal(text));
}

/** True when `text` is already in canonical form (parseDecimal would return it unchanged). */
export function isCanonicalDecimal(text: string): boolean {
  try {
    return parseDecimal(text) === text;
  } catch {
    return false;
  }
}

function readDecimal(text: string): Decimal {
  if (typeof text !== "string") throw invalid("A number must be given as a string");
  if (text.length > DECIMAL_TEXT_LENGTH_MAX) {
    throw invalid(`The number is too long: ${text.length} characters`);
  }
  const match = numberPattern.exec(text);
  const intPart = match?.[2] ?? "";
  const fracPart = match?.[3] ?? "";
  if (match === null || intPart.length + fracPart.length === 0) {
    throw invalid(`The parameter cannot be converted to a numeric value: ${quote(text)}`);
  }
  const negative = match[1] === "-";
  // Exponents may be written with many digits ("1e000002"); BigInt keeps them exact.
  let exponent = BigInt(match[4] ?? "0") - BigInt(fracPart.length);
  let digits = (intPart + fracPart).replace(/^0+/, "");
  if (digits.length === 0) return { coefficient: 0n, exponent: 0 };
  const trimmed = digits.replace(/0+$/, "");
  exponent += BigInt(digits.length - trimmed.length);
  digits = trimmed;
  return checkRange(negative, digits, exponent, text);
}

function checkRange(negative: boolean, digits: string, exponent: bigint, text: string): Decimal {
  if (digits.length > DECIMAL_DIGITS_MAX) {
    throw invalid(
      `Attempting to store more than ${DECIMAL_DIGITS_MAX} significant digits in a Number: ` +
        quote(text),
    );
  }
  // The leading digit sits at 10^(exponent + digits - 1).
  const leading = exponent + BigInt(digits.length - 1);
  if (leading > BigInt(DECIMAL_EXPONENT_MAX)) {
    throw invalid(
      "Number overflow. Attempting to store a number with magnitude larger than supported " +
        `range: ${quote(text)}`,
    );
  }
  if (leading < BigInt(DECIMAL_EXPONENT_MIN)) {
    throw invalid(
      "Number underflow. Attempting to store a number with magnitude smaller than supported " +
        `range: ${quote(text)}`,
    );
  }
  const coefficient = BigInt(digits);
  return { coefficient: negative ? -coefficient : coefficient, exponent: Number(exponent) };
}

function quote(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}...` : text);
}

/** Writes a decimal in canonical form: plain notation, no redundant zeros, no "-0". */
function formatDecimal(value: Decimal): string {
  if (value.coefficient === 0n) return "0";
  const negative = value.coefficient < 0n;
  let digits = (negative ? -value.coefficient : value.coefficient).toString();
  let exponent = value.exponent;
  const trimmed = digits.replace(/0+$/, "");
  exponent += digits.length - trimmed.length;
  digits = trimmed;
  let body: string;
  if (exponent >= 0) {
    body = digits + "0".repeat(exponent);
  } else {
    const point = digits.length + exponent;
    body =
      point > 0
        ? `${digits.slice(0, point)}.${digits.slice(point)}`
        : `0.${"0".repeat(-point)}${digits}`;
  }
  return negative ? `-${body}` : body;
}

/** Brings two decimals to the same exponent so their coefficients can be added or compared. */
function align(a: Decimal, b: Decimal): [bigint, bigint, number] {
  const exponent = Math.min(a.exponent, b.exponent);
  const scaledA = a.coefficient * 10n ** BigInt(a.exponent - exponent);
  const scaledB = b.coefficient * 10n ** BigInt(b.exponent - exponent);
  return [scaledA, scaledB, exponent];
}

/** Re-checks an arithmetic result against DynamoDB's precision and range. */
function fromResult(coefficient: bigint, exponent: number, what: string): string {
  if (coefficient === 0n) return "0";
  const negative = coefficient < 0n;
  const raw = (negative ? -coefficient : coefficient).toString();
  const digits = raw.replace(/0+$/, "");
  const lastDigitExponent = BigInt(exponent + raw.length - digits.length);
  return formatDecimal(checkRange(negative, digits, lastDigitExponent, what));
}

/** Exact a + b. Throws INVALID_ARGUMENT when the result needs more than 38 digits or overflows. */
export function addDecimal(a: string, b: string): string {
  const [x, y, exponent] = align(readDecimal(a), readDecimal(b));
  return fromResult(x + y, exponent, `${a} + ${b}`);
}

/** Exact a - b, with the same limits as addDecimal. */
export function subtractDecimal(a: string, b: string): string {
  const [x, y, exponent] = align(readDecimal(a), readDecimal(b));
  return fromResult(x - y, exponent, `${a} - ${b}`);
}

/** Exact numeric order of two numbers: -1, 0 or 1. Accepts any valid numeric text. */
export function compareDecimal(a: string, b: string): -1 | 0 | 1 {
  const [x, y] = align(readDecimal(a), readDecimal(b));
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The nearest double, for display and metrics only; never for decisions. */
export function decimalToNumber(text: string): number {
  return Number(parseDecimal(text));
}

/** How many significant digits the number has (0 for zero); item sizes depend on it. */
export function significantDigits(text: string): number {
  const value = readDecimal(text);
  if (value.coefficient === 0n) return 0;
  const abs = value.coefficient < 0n ? -value.coefficient : value.coefficient;
  return abs.toString().length;
}
