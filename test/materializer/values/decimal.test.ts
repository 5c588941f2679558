// Goal: decimal.ts reads every numeric spelling DynamoDB accepts into the canonical string of
// DESIGN.md, refuses the rest with a typed error, and does exact arithmetic. Method: a table
// of spellings and their canonical forms, a table of refusals, and fast-check properties that
// compare add, subtract and compare with a naive model built on BigInt scaled by 10^200.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  addDecimal,
  compareDecimal,
  decimalToNumber,
  isCanonicalDecimal,
  parseDecimal,
  significantDigits,
  subtractDecimal,
} from "../../../materializer/values/decimal.js";
import { isDbError } from "../../../services/shared/errors.js";

const canonicalCases: [string, string][] = [
  ["0", "0"],
  ["-0", "0"],
  ["+0", "0"],
  ["0.000", "0"],
  ["000", "0"],
  ["0e99999", "0"],
  ["1e2", "100"],
  ["1E2", "100"],
  ["1e+2", "100"],
  ["+001.50", "1.5"],
  [".5", "0.5"],
  ["-.5", "-0.5"],
  ["5.", "5"],
  ["-12.25", "-12.25"],
  ["1e-4", "0.0001"],
  ["123.456e1", "1234.56"],
  ["123.456e-5", "0.00123456"],
  ["1000e-3", "1"],
  ["-1000e-1", "-100"],
  ["1e125", "1" + "0".repeat(125)],
  ["1e-130", "0." + "0".repeat(129) + "1"],
  [
    "9.9999999999999999999999999999999999999E+125",
    "99999999999999999999999999999999999999" + "0".repeat(88),
  ],
  ["12345678901234567890123456789012345678", "12345678901234567890123456789012345678"],
  ["1234567890123456789012345678901234567800000", "1234567890123456789012345678901234567800000"],
  ["0.00000000000000000000000000000000000000000000000001", "0." + "0".repeat(49) + "1"],
  ["1e0000000000000000000000000000000000002", "100"],
];

const refusedCases: [string, RegExp][] = [
  ["", /cannot be converted/],
  [" 1", /cannot be converted/],
  ["1 ", /cannot be converted/],
  ["abc", /cannot be converted/],
  ["1e", /cannot be converted/],
  ["e5", /cannot be converted/],
  [".", /cannot be converted/],
  ["--1", /cannot be converted/],
  ["1.2.3", /cannot be converted/],
  ["NaN", /cannot be converted/],
  ["Infinity", /cannot be converted/],
  ["0x10", /cannot be converted/],
  ["1_000", /cannot be converted/],
  ["123456789012345678901234567890123456789", /more than 38 significant digits/],
  ["1.23456789012345678901234567890123456789", /more than 38 significant digits/],
  ["1e126", /Number overflow/],
  ["-1e126", /Number overflow/],
  ["10e125", /Number overflow/],
  ["1e-131", /Number underflow/],
  ["0.1e-130", /Number underflow/],
  ["1e99999999999999999999", /Number overflow/],
  ["1" + "0".repeat(2000), /too long/],
];

describe("parseDecimal", () => {
  for (const [input, expected] of canonicalCases) {
    it(`${JSON.stringify(input)} -> ${expected.length > 30 ? expected.slice(0, 30) + "..." : expected}`, () => {
      assert.equal(parseDecimal(input), expected);
      assert.equal(isCanonicalDecimal(expected), true);
      assert.equal(parseDecimal(expected), expected);
    });
  }
  for (const [input, message] of refusedCases) {
    it(`refuses ${JSON.stringify(input.slice(0, 40))}`, () => {
      assert.throws(
        () => parseDecimal(input),
        (error: unknown) => isDbError(error, "INVALID_ARGUMENT") && message.test(error.message),
      );
      assert.equal(isCanonicalDecimal(input), false);
    });
  }
  it("isCanonicalDecimal rejects non-canonical spellings", () => {
    for (const text of ["01", "1.0", "-0", "+1", "1e2", ".5", "1."]) {
      assert.equal(isCanonicalDecimal(text), false, text);
    }
  });
  it("counts significant digits and converts for display", () => {
    assert.equal(significantDigits("0"), 0);
    assert.equal(significantDigits("100"), 1);
    assert.equal(significantDigits("-12.25"), 4);
    assert.equal(significantDigits("0.0001"), 1);
    assert.equal(decimalToNumber("-12.25"), -12.25);
    assert.equal(decimalToNumber("1e2"), 100);
  });
});

// The naive model: every value is an integer number of 10^-SCALE units.
const SCALE = 200;
function toUnits(text: string): bigint {
  const canonical = parseDecimal(text);
  const negative = canonical.startsWith("-");
  const [int = "", frac = ""] = canonical.replace("-", "").split(".");
  const units = BigInt(int + frac.padEnd(SCALE, "0"));
  return negative ? -units : units;
}

/** Random decimals within range: up to 38 digits, exponents that keep them representable. */
const decimalArb = fc
  .record({
    negative: fc.boolean(),
    digits: fc.stringMatching(/^[0-9]{1,38}$/),
    exponent: fc.integer({ min: -60, max: 60 }),
  })
  .map(({ negative, digits, exponent }) => `${negative ? "-" : ""}${digits}e${exponent}`);

describe("decimal arithmetic against a BigInt model", () => {
  it("compare agrees with the model", () => {
    fc.assert(
      fc.property(decimalArb, decimalArb, (a, b) => {
        const x = toUnits(a);
        const y = toUnits(b);
        assert.equal(compareDecimal(a, b), x < y ? -1 : x > y ? 1 : 0);
      }),
      { numRuns: 500 },
    );
  });
  it("add and subtract agree with the model or refuse with a precision error", () => {
    fc.assert(
      fc.property(decimalArb, decimalArb, (a, b) => {
        for (const [op, expected] of [
          [addDecimal, toUnits(a) + toUnits(b)],
          [subtractDecimal, toUnits(a) - toUnits(b)],
        ] as const) {
          let result: string;
          try {
            result = op(a, b);
          } catch (error) {
            assert.ok(isDbError(error, "INVALID_ARGUMENT"));
            assert.match(error.message, /38 significant digits/);
            continue;
          }
          assert.equal(toUnits(result), expected);
          assert.equal(isCanonicalDecimal(result), true);
        }
      }),
      { numRuns: 500 },
    );
  });
  it("a number's canonical form is a fixed point", () => {
    fc.assert(
      fc.property(decimalArb, (a) => parseDecimal(parseDecimal(a)) === parseDecimal(a)),
      { numRuns: 300 },
    );
  });
  it("results out of range are refused, not rounded", () => {
    const max = "9.9999999999999999999999999999999999999E+125";
    assert.throws(() => addDecimal(max, "1e88"), /Number overflow/);
    assert.equal(subtractDecimal(max, max), "0");
    assert.throws(() => addDecimal("1e20", "1e-20"), /38 significant digits/);
    assert.equal(addDecimal("0.1", "0.2"), "0.3");
    assert.equal(subtractDecimal("-0.1", "0.2"), "-0.3");
    assert.equal(addDecimal("1e-130", "-1e-130"), "0");
  });
});
