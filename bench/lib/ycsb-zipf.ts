// YCSB's key choosers over [0, n): a zipfian generator (Gray et al., "Quickly generating
// billion-record synthetic databases", as YCSB's ZipfianGenerator), scrambled by an FNV-1a
// hash as YCSB's ScrambledZipfianGenerator so the hot keys are spread over the key space
// (and so over the table's partitions) instead of being the first ranks. Seeded from
// services/shared/prng.ts, so a run replays exactly.
import { mulberry32 } from "../../services/shared/prng.js";

export const YCSB_THETA = 0.99;

export interface KeyChooser {
  /** The next item number in [0, n). */
  next(): number;
}

function zeta(n: number, theta: number): number {
  let sum = 0;
  for (let i = 1; i <= n; i++) sum += 1 / i ** theta;
  return sum;
}

/** Rank 0 is the hottest; P(rank k) ∝ 1 / (k + 1)^theta. */
export function zipfian(n: number, seed: number, theta = YCSB_THETA): KeyChooser {
  const random = mulberry32(seed);
  const zetaN = zeta(n, theta);
  const zeta2 = zeta(2, theta);
  const alpha = 1 / (1 - theta);
  const eta = (1 - (2 / n) ** (1 - theta)) / (1 - zeta2 / zetaN);
  const half = 0.5 ** theta;
  return {
    next(): number {
      const u = random();
      const uz = u * zetaN;
      if (uz < 1) return 0;
      if (uz < 1 + half) return Math.min(1, n - 1);
      return Math.min(n - 1, Math.floor(n * (eta * u - eta + 1) ** alpha));
    },
  };
}

/** 32-bit FNV-1a of a number's decimal digits. */
function fnv1a(value: number): number {
  let hash = 0x811c9dc5;
  const text = String(value);
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** Zipfian ranks mapped to item numbers by a hash, as YCSB's default request distribution. */
export function scrambledZipfian(n: number, seed: number, theta = YCSB_THETA): KeyChooser {
  const ranks = zipfian(n, seed, theta);
  return { next: () => fnv1a(ranks.next()) % n };
}

/** Uniform over [0, n). */
export function uniform(n: number, seed: number): KeyChooser {
  const random = mulberry32(seed);
  return { next: () => Math.floor(random() * n) };
}
