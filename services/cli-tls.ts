// The command line's SSL flags for the Kafka side (issue 8, TLS), kept apart from cli.ts:
//   --ssl-cert FILE --ssl-key FILE [--ssl-client-ca FILE]    (broker, start)
//       the broker's Kafka listener speaks SSL with this certificate; with --ssl-client-ca,
//       clients must present a certificate that chains to it (mutual TLS).
//   --kafka-ca FILE [--kafka-cert FILE --kafka-key FILE]      (gateway, materializer, start)
//       the node's Kafka clients connect with SSL, trusting FILE, presenting the pair.
// Files are read and checked while parsing, so a bad one fails start with INVALID_CONFIG
// before anything listens.
import { DbError } from "./shared/errors.js";
import {
  loadClientTls,
  loadServerTls,
  type TlsClientFiles,
  type TlsServerFiles,
} from "./shared/tls.js";

export const brokerSslFlags = {
  "ssl-cert": { type: "string" },
  "ssl-key": { type: "string" },
  "ssl-client-ca": { type: "string" },
} as const;

export const kafkaClientSslFlags = {
  "kafka-ca": { type: "string" },
  "kafka-cert": { type: "string" },
  "kafka-key": { type: "string" },
} as const;

export const sslUsage = `SSL to the log (Kafka security.protocol=SSL):
  broker, start:  --ssl-cert FILE --ssl-key FILE   the Kafka listener speaks SSL
                  [--ssl-client-ca FILE]           clients must present a certificate
                                                   chaining to FILE (mutual TLS)
  gateway, materializer, start:
                  --kafka-ca FILE                  connect to the brokers with SSL, trusting
                                                   FILE (start: defaults to --ssl-cert)
                  [--kafka-cert FILE --kafka-key FILE]   client certificate (mutual TLS)
  SIGHUP re-reads the broker's certificate and key (a bad pair keeps the one in use).`;

type Values<T> = Partial<Record<keyof T, string>>;

/** The broker listener's TLS files, or undefined for plaintext. */
export function brokerTlsFromFlags(values: Values<typeof brokerSslFlags>) {
  const certFile = values["ssl-cert"];
  const keyFile = values["ssl-key"];
  const clientCaFile = values["ssl-client-ca"];
  if (certFile === undefined && keyFile === undefined) {
    if (clientCaFile !== undefined)
      throw new DbError("INVALID_CONFIG", "--ssl-client-ca needs --ssl-cert and --ssl-key");
    return undefined;
  }
  if (certFile === undefined || keyFile === undefined)
    throw new DbError("INVALID_CONFIG", "--ssl-cert and --ssl-key go together");
  const files: TlsServerFiles = { certFile, keyFile, clientCaFile };
  loadServerTls(files);
  return files;
}

/** The Kafka clients' TLS files, or undefined for plaintext; `defaultCa` when no --kafka-ca. */
export function kafkaTlsFromFlags(
  values: Values<typeof kafkaClientSslFlags>,
  defaultCa?: string,
): TlsClientFiles | undefined {
  const caFile = values["kafka-ca"] ?? defaultCa;
  const certFile = values["kafka-cert"];
  const keyFile = values["kafka-key"];
  if (caFile === undefined && certFile === undefined && keyFile === undefined) return undefined;
  const files: TlsClientFiles = { caFile, certFile, keyFile };
  loadClientTls(files);
  return files;
}
