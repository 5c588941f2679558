// `logkv restore`, `logkv backup` and `logkv backups`: clients of a running node's GraphQL
// API (materializer/restore/README.md). restore starts the job and follows restoreStatus
// with a progress bar until the table is ACTIVE (exit 0) or the restore FAILED (exit 1).
import { parseArgs } from "node:util";
import { DbError } from "./shared/errors.js";

/** s3://bucket/prefix/name → [s3://bucket/prefix, name]; a plain name → [null, name]. */
export function splitBackupArg(text: string): [string | null, string] {
  if (!text.startsWith("s3://")) return [null, text];
  const at = text.lastIndexOf("/");
  if (at < "s3://".length || at === text.length - 1) {
    throw new DbError("INVALID_CONFIG", `want s3://bucket/prefix/name, got ${text}`);
  }
  return [text.slice(0, at), text.slice(at + 1)];
}

export const restoreUsage = `restore, backups (against a running node's GraphQL endpoint):
  restore   restore a table as of an instant, or a backup, into a new table, with progress
            (--graphql URL (default http://127.0.0.1:4000/graphql) --target TABLE
             and either --source TABLE --time ISO|EPOCH_MS
             or --from-backup NAME|s3://BUCKET/PREFIX/NAME (--backup NAME: the same)
             [--no-wait: return once started] [--api-key KEY])
  backup    write a consistent backup of a table to the node's backup folder or to S3
            (--table TABLE --name NAME [--to s3://BUCKET/PREFIX] [--graphql URL])
  backups   list backups, of the node's folder or under an S3 location
            ([--from s3://BUCKET/PREFIX] [--delete NAME] [--graphql URL])`;

const STATUS = `target source time state phase eventsReplayed eventsTotal itemsWritten
  itemsTotal checkpoint message running`;

interface Status {
  target: string;
  source: string;
  time: string;
  state: string;
  phase: string | null;
  eventsReplayed: string;
  eventsTotal: string;
  itemsWritten: number;
  itemsTotal: number;
  checkpoint: string | null;
  message: string | null;
  running: boolean;
}

class Client {
  constructor(
    private readonly url: string,
    private readonly apiKey: string | undefined,
  ) {}

  async call<T>(query: string, variables: Record<string, unknown>): Promise<T> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.apiKey !== undefined) headers["authorization"] = `Bearer ${this.apiKey}`;
    const response = await fetch(this.url, {
      method: "POST",
      headers,
      body: JSON.stringify({ query, variables }),
    });
    const body = (await response.json()) as { data?: T; errors?: { message: string }[] };
    if (body.errors !== undefined && body.errors.length > 0) {
      throw new DbError("INVALID_ARGUMENT", body.errors.map((e) => e.message).join("; "));
    }
    return body.data as T;
  }
}

function clientOf(values: { graphql?: string; "api-key"?: string }): Client {
  return new Client(values.graphql ?? "http://127.0.0.1:4000/graphql", values["api-key"]);
}

const BAR_WIDTH = 30;

/** One line of progress: a bar over the replay then the load, and the counts. */
export function progressLine(status: Status): string {
  const events = Number(status.eventsTotal) || 0;
  const items = status.itemsTotal;
  // The replay is the first half of the bar and the load the second.
  const replayed = events === 0 ? 1 : Math.min(1, Number(status.eventsReplayed) / events);
  const loaded = items === 0 ? (status.phase === "LOADING" ? 0 : 1) : status.itemsWritten / items;
  const early = status.phase === "PREPARING" || status.phase === "REPLAYING";
  const fraction = status.state === "ACTIVE" ? 1 : early ? replayed / 2 : 0.5 + loaded / 2;
  const filled = Math.round(fraction * BAR_WIDTH);
  const bar = `[${"#".repeat(filled)}${".".repeat(BAR_WIDTH - filled)}]`;
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  return (
    `${bar} ${percent} ${status.state} ${status.phase ?? "-"}  events ` +
    `${status.eventsReplayed}/${status.eventsTotal}  items ${status.itemsWritten}/${items}`
  );
}

async function follow(client: Client, target: string): Promise<Status> {
  const tty = process.stdout.isTTY === true;
  let last = "";
  for (;;) {
    const { restoreStatus } = await client.call<{ restoreStatus: Status | null }>(
      `query($t: String!) { restoreStatus(target: $t) { ${STATUS} } }`,
      { t: target },
    );
    if (restoreStatus === null) throw new DbError("NOT_FOUND", `no restore into ${target}`);
    const line = progressLine(restoreStatus);
    if (tty) process.stdout.write(`\r${line}`);
    else if (line !== last) console.log(line);
    last = line;
    const ended = restoreStatus.state === "ACTIVE" || restoreStatus.state === "FAILED";
    if (ended || !restoreStatus.running) {
      if (tty) process.stdout.write("\n");
      return restoreStatus;
    }
    await new Promise((resolve) => setTimeout(resolve, tty ? 200 : 1000));
  }
}

export async function runRestore(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      graphql: { type: "string" },
      "api-key": { type: "string" },
      source: { type: "string" },
      target: { type: "string" },
      time: { type: "string" },
      backup: { type: "string" },
      "from-backup": { type: "string" },
      "no-wait": { type: "boolean" },
    },
  });
  const client = clientOf(values);
  const target = values.target;
  if (target === undefined) throw new DbError("INVALID_CONFIG", "restore needs --target");
  const backup = values["from-backup"] ?? values.backup;
  if (backup !== undefined) {
    const [location, name] = splitBackupArg(backup);
    await client.call(
      `mutation($b: String!, $t: String!, $l: String) {
        restoreTableFromBackup(backup: $b, target: $t, location: $l) { target } }`,
      { b: name, t: target, l: location },
    );
  } else {
    if (values.source === undefined || values.time === undefined) {
      throw new DbError("INVALID_CONFIG", "restore needs --source and --time, or --from-backup");
    }
    await client.call(
      `mutation($s: String!, $t: String!, $time: String!) {
        restoreTable(source: $s, target: $t, time: $time) { target } }`,
      { s: values.source, t: target, time: values.time },
    );
  }
  if (values["no-wait"] === true) {
    console.log(`restore into ${target} started`);
    return;
  }
  const status = await follow(client, target);
  if (status.state === "ACTIVE") {
    console.log(`restored ${status.source} as of ${status.time} into ${target}`);
    return;
  }
  console.error(`restore into ${target} ${status.state}: ${status.message ?? "interrupted"}`);
  process.exitCode = 1;
}

const BACKUP = "name table createdAt items bytes offsets location";

interface Backup {
  name: string;
  table: string;
  createdAt: string;
  items: number;
  bytes: string;
  offsets: string[];
  location: string | null;
}

function backupLine(backup: Backup): string {
  const where = backup.location === null ? "" : `\t${backup.location}/${backup.name}`;
  return `${backup.name}\t${backup.table}\t${backup.createdAt}\t${backup.items} items\t${backup.bytes} bytes${where}`;
}

export async function runBackup(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      graphql: { type: "string" },
      "api-key": { type: "string" },
      table: { type: "string" },
      name: { type: "string" },
      to: { type: "string" },
    },
  });
  if (values.table === undefined || values.name === undefined) {
    throw new DbError("INVALID_CONFIG", "backup needs --table and --name");
  }
  const { backupTable } = await clientOf(values).call<{ backupTable: Backup }>(
    `mutation($t: String!, $n: String!, $to: String) {
      backupTable(table: $t, backup: $n, to: $to) { ${BACKUP} } }`,
    { t: values.table, n: values.name, to: values.to ?? null },
  );
  console.log(backupLine(backupTable));
}

export async function runBackups(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      graphql: { type: "string" },
      "api-key": { type: "string" },
      delete: { type: "string" },
      from: { type: "string" },
    },
  });
  const client = clientOf(values);
  const location = values.from ?? null;
  if (values.delete !== undefined) {
    const { deleteBackup } = await client.call<{ deleteBackup: Backup }>(
      `mutation($n: String!, $l: String) { deleteBackup(backup: $n, location: $l) {
        ${BACKUP} } }`,
      { n: values.delete, l: location },
    );
    console.log(`deleted ${backupLine(deleteBackup)}`);
    return;
  }
  const { backups } = await client.call<{ backups: Backup[] }>(
    `query($l: String) { backups(location: $l) { ${BACKUP} } }`,
    { l: location },
  );
  for (const backup of backups) console.log(backupLine(backup));
}
