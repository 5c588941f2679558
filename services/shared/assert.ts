// Assertions that stay on in production. A failed assertion is a bug in logkv, not an
// operating error, so it throws AssertionError and the owning process is expected to crash
// (see STYLE.md §3). Operating errors use DbError from errors.ts instead.

export class AssertionError extends Error {
  override name = "AssertionError";
}

export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function unreachable(value: never, message = "unreachable"): never {
  throw new AssertionError(`${message}: ${String(value)}`);
}
