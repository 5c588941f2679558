// TLS material from PEM files, shared by every listener and client of logkv: the gateway's
// HTTPS/WSS, the broker's Kafka listener (SSL) and the kafkajs clients of gateway and
// materializer. Files are read and checked at start, so a missing file or a key that does
// not match its certificate fails start with INVALID_CONFIG naming the file, and again on
// reload (SIGHUP), where the caller keeps the context in use if the new one is bad.
import { readFileSync } from "node:fs";
import { createSecureContext, type SecureContextOptions } from "node:tls";
import { DbError } from "./errors.js";

/** The oldest protocol any logkv endpoint accepts or speaks. */
export const TLS_MIN_VERSION = "TLSv1.2" as const;

export interface TlsServerFiles {
  /** PEM certificate chain (server certificate first). */
  certFile: string;
  /** PEM private key of that certificate. */
  keyFile: string;
  /** PEM CA bundle that client certificates must chain to; set = clients must present one. */
  clientCaFile?: string;
}

export interface TlsClientFiles {
  /** PEM CA bundle the server's certificate must chain to (absent: the system's CAs). */
  caFile?: string;
  /** Client certificate and key, for servers that require one (mutual TLS). */
  certFile?: string;
  keyFile?: string;
}

/** Server-side options for tls.createServer / https.createServer / setSecureContext. */
export function loadServerTls(files: TlsServerFiles): SecureContextOptions & {
  requestCert: boolean;
  rejectUnauthorized: boolean;
} {
  const context: SecureContextOptions = {
    cert: readPem(files.certFile, "certificate"),
    key: readPem(files.keyFile, "key"),
    minVersion: TLS_MIN_VERSION,
  };
  if (files.clientCaFile !== undefined) context.ca = readPem(files.clientCaFile, "client CA");
  check(context, `TLS certificate ${files.certFile} and key ${files.keyFile}`);
  const mutual = files.clientCaFile !== undefined;
  return { ...context, requestCert: mutual, rejectUnauthorized: mutual };
}

/** Client-side options (node:tls connect options, kafkajs `ssl`). */
export function loadClientTls(files: TlsClientFiles): {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  minVersion: typeof TLS_MIN_VERSION;
  rejectUnauthorized: true;
} {
  if ((files.certFile === undefined) !== (files.keyFile === undefined))
    throw new DbError("INVALID_CONFIG", "a client certificate and its key go together");
  const options = {
    ...(files.caFile === undefined ? {} : { ca: readPem(files.caFile, "CA") }),
    ...(files.certFile === undefined ? {} : { cert: readPem(files.certFile, "certificate") }),
    ...(files.keyFile === undefined ? {} : { key: readPem(files.keyFile, "key") }),
    minVersion: TLS_MIN_VERSION,
    rejectUnauthorized: true as const,
  };
  check(options, "TLS client files");
  return options;
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new DbError("INVALID_CONFIG", `cannot read the TLS ${what} ${file}: ${message(error)}`);
  }
}

function check(context: SecureContextOptions, what: string): void {
  try {
    createSecureContext(context);
  } catch (error) {
    throw new DbError("INVALID_CONFIG", `${what}: ${message(error)}`);
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
