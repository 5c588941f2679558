// Structured logging: one JSON object per line on stderr, with a time, a level, the
// component that logged and free fields. Nothing here buffers, so a crash loses no line.

export type LogLevel = "debug" | "info" | "warn" | "error";

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function envLevel(): LogLevel {
  const value = process.env["LOGKV_LOG_LEVEL"];
  if (value === "debug" || value === "info" || value === "warn" || value === "error") return value;
  return "info";
}

let minimumLevel: LogLevel = envLevel();

export function setLogLevel(level: LogLevel): void {
  minimumLevel = level;
}

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
}

function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}

export function createLogger(component: string): Logger {
  const write = (level: LogLevel, message: string, fields?: Record<string, unknown>): void => {
    if (levelRank[level] < levelRank[minimumLevel]) return;
    const line = { time: new Date().toISOString(), level, component, message, ...fields };
    process.stderr.write(JSON.stringify(line, jsonSafe) + "\n");
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    child: (name) => createLogger(`${component}.${name}`),
  };
}
