// HTTPS and WSS for the gateway: a certificate chain and private key in PEM files. Read at
// start (a missing file or a key that does not match the certificate fails start with
// INVALID_CONFIG) and again on reload (SIGHUP), where a bad pair keeps the one in use, so a
// certificate can be renewed without a restart and a botched renewal never takes the
// gateway down. WebSocket subscriptions ride on the same server, so they become WSS too.
import { readFileSync } from "node:fs";
import { createSecureContext, type SecureContextOptions } from "node:tls";
import { DbError } from "../services/shared/errors.js";

export interface GatewayTlsOptions {
  /** PEM certificate chain (server certificate first). */
  certFile: string;
  /** PEM private key of that certificate. */
  keyFile: string;
}

/** The oldest protocol the gateway accepts. */
export const TLS_MIN_VERSION = "TLSv1.2";

/** Reads and checks the pair; INVALID_CONFIG naming the file or the mismatch. */
export function loadTls(options: GatewayTlsOptions): SecureContextOptions {
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new DbError("INVALID_CONFIG", `cannot read the TLS ${what} ${file}: ${message(error)}`);
    }
  };
  const context: SecureContextOptions = {
    cert: read(options.certFile, "certificate"),
    key: read(options.keyFile, "key"),
    minVersion: TLS_MIN_VERSION,
  };
  try {
    createSecureContext(context);
  } catch (error) {
    throw new DbError(
      "INVALID_CONFIG",
      `TLS certificate ${options.certFile} and key ${options.keyFile}: ${message(error)}`,
    );
  }
  return context;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
