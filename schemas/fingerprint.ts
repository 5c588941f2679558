// CRC-64-AVRO, the 64-bit Rabin fingerprint the Avro specification defines for schemas
// ("Schema Fingerprints"): it is computed over the schema's Parsing Canonical Form and goes,
// little endian, into the single-object encoding header. avsc's own Type.fingerprint() is an
// MD5 or SHA-256 hash, not this, so logkv implements the spec's table-driven algorithm.
// Fingerprints are computed once per published schema at module load, so BigInt arithmetic
// is fast enough and keeps the code a line-for-line copy of the spec's.

/** The fingerprint of the empty byte string, and the polynomial of the Rabin function. */
const EMPTY = 0xc15d213aa4d7a795n;

const TABLE: BigUint64Array = (() => {
  const table = new BigUint64Array(256);
  for (let i = 0; i < 256; i++) {
    let fp = BigInt(i);
    for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (EMPTY & -(fp & 1n));
    table[i] = fp;
  }
  return table;
})();

/** CRC-64-AVRO of `bytes`, as an unsigned 64-bit value. */
export function crc64Avro(bytes: Uint8Array): bigint {
  let fp = EMPTY;
  for (const byte of bytes) {
    const entry = TABLE[Number((fp ^ BigInt(byte)) & 0xffn)];
    // The table has 256 entries and the index is masked to 8 bits.
    fp = (fp >> 8n) ^ (entry as bigint);
  }
  return fp;
}

/** CRC-64-AVRO of a schema's Parsing Canonical Form (a JSON string), unsigned. */
export function fingerprintOfCanonicalForm(canonicalForm: string): bigint {
  return crc64Avro(Buffer.from(canonicalForm, "utf8"));
}

/** The 8 bytes the single-object encoding carries: the fingerprint, little endian. */
export function fingerprintBytes(fingerprint: bigint): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64LE(fingerprint);
  return bytes;
}
