// HTTPS and WSS for the gateway: a certificate chain and private key in PEM files. Read at
// start (a missing file or a key that does not match the certificate fails start with
// INVALID_CONFIG) and again on reload (SIGHUP), where a bad pair keeps the one in use, so a
// certificate can be renewed without a restart and a botched renewal never takes the
// gateway down. WebSocket subscriptions ride on the same server, so they become WSS too.
// The files are read by services/shared/tls.ts, as for the broker's SSL listener.
import type { SecureContextOptions } from "node:tls";
import { loadServerTls, TLS_MIN_VERSION } from "../services/shared/tls.js";

export { TLS_MIN_VERSION };

export interface GatewayTlsOptions {
  /** PEM certificate chain (server certificate first). */
  certFile: string;
  /** PEM private key of that certificate. */
  keyFile: string;
}

/** Reads and checks the pair; INVALID_CONFIG naming the file or the mismatch. */
export function loadTls(options: GatewayTlsOptions): SecureContextOptions {
  return loadServerTls({ certFile: options.certFile, keyFile: options.keyFile });
}
