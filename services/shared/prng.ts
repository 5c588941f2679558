// One seeded pseudo-random generator for everything that must replay exactly: simulations,
// fuzzers, fault schedules. mulberry32 is small, fast and good enough for driving tests; it
// is not for cryptography.

/** A generator of floats in [0, 1), fully determined by the seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
