// The audit log: one JSON object per line for every mutation (DDL and item writes, with
// their outcome) and every denial (unauthenticated or forbidden, reads included). Lines go
// to a file (appended, `--audit-log FILE`) or, without one, to the logger at info level.
// Fields: time, who (key id, "key:<sha-256 prefix>", "unknown:<prefix>" or "anonymous"),
// operation (root field), kind (ddl | write | read), tables, outcome ("ok", "denied" or an
// error code) and reason for a denial. Keys themselves never appear.
import { createWriteStream, type WriteStream } from "node:fs";
import type { Logger } from "../../services/shared/log.js";
import type { OperationKind } from "./keys.js";

export interface AuditRecord {
  who: string;
  operation: string;
  kind: OperationKind;
  /** null: the operation names no table (listTables) or every table. */
  tables: readonly string[] | null;
  outcome: string;
  reason?: string;
}

export interface AuditSink {
  write(record: AuditRecord): void;
  close(): Promise<void>;
}

export class FileAuditSink implements AuditSink {
  private readonly stream: WriteStream;

  constructor(
    path: string,
    private readonly logger: Logger,
  ) {
    this.stream = createWriteStream(path, { flags: "a" });
    // A write fault is logged; requests keep being served.
    this.stream.on("error", (error) => logger.error("audit log write failed", { path, error }));
  }

  write(record: AuditRecord): void {
    this.stream.write(JSON.stringify({ time: new Date().toISOString(), ...record }) + "\n");
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.stream.end(() => resolve()));
  }
}

export class LoggerAuditSink implements AuditSink {
  constructor(private readonly logger: Logger) {}

  write(record: AuditRecord): void {
    this.logger.info("audit", { ...record });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
