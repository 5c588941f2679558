// The one place logkv's services make a kafkajs client, so every part that talks to the log
// (gateway, materializer, restore worker, routing) reaches the same brokers the same way:
// plaintext, or SSL with a CA and optionally a client certificate (mutual TLS).
import { Kafka, logLevel, type RetryOptions } from "kafkajs";
import { loadClientTls, type TlsClientFiles } from "./tls.js";

export interface KafkaConnection {
  brokers: string[];
  /** security.protocol=SSL with these PEM files; absent: plaintext. */
  tls?: TlsClientFiles;
}

/** A kafkajs client; TLS files are read (and checked) now, so a bad file fails early. */
export function kafkaClient(
  connection: KafkaConnection,
  clientId: string,
  retry: RetryOptions = { retries: 10, initialRetryTime: 100 },
): Kafka {
  return new Kafka({
    clientId,
    brokers: connection.brokers,
    logLevel: logLevel.NOTHING,
    retry,
    ...(connection.tls === undefined ? {} : { ssl: loadClientTls(connection.tls) }),
  });
}
