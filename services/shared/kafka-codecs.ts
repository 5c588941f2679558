// Snappy, LZ4 and zstd codecs for kafkajs, which ships only gzip. logkv's own kafkajs
// clients (materializer, gateway, tests, benchmark) call registerKafkajsCodecs() once at
// startup so that they can read batches any producer wrote and write compressed ones.
//
// kafkajs looks codecs up as CompressionCodecs[type]() → { compress(encoder), decompress(buf) }
// (see kafkajs/src/protocol/message/compression/gzip.js): compress receives an Encoder whose
// `.buffer` holds the uncompressed records. The formats are those of the broker's own codecs
// (services/broker/records/compression.ts): raw snappy out, raw or xerial-framed snappy in
// (as kafkajs-snappy reads it), LZ4 frames and zstd frames.
import kafkajs from "kafkajs";
import { compress, decompress } from "../broker/records/compression.js";

/**
 * Decompressed bytes a client accepts per batch. Larger than any batch the broker accepts
 * (requestBytesMax), so it only stops a hostile or corrupt stream from exhausting memory.
 */
export const CLIENT_DECOMPRESSED_BYTES_MAX = 256 * 1024 * 1024;

interface KafkajsEncoder {
  buffer: Buffer;
}

export interface KafkajsCodec {
  compress(encoder: KafkajsEncoder): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

/** A kafkajs codec factory for one of the broker's codec ids. */
export function kafkajsCodec(codecId: number): () => KafkajsCodec {
  const codec: KafkajsCodec = {
    compress: (encoder) => compress(codecId, encoder.buffer),
    decompress: (buffer) => decompress(codecId, buffer, CLIENT_DECOMPRESSED_BYTES_MAX),
  };
  return () => codec;
}

/** Registers snappy, LZ4 and zstd with kafkajs; idempotent. */
export function registerKafkajsCodecs(): void {
  const { CompressionCodecs, CompressionTypes } = kafkajs;
  CompressionCodecs[CompressionTypes.Snappy] = kafkajsCodec(CompressionTypes.Snappy);
  CompressionCodecs[CompressionTypes.LZ4] = kafkajsCodec(CompressionTypes.LZ4);
  CompressionCodecs[CompressionTypes.ZSTD] = kafkajsCodec(CompressionTypes.ZSTD);
}
