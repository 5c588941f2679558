// A real S3-compatible server on loopback for the backup tests (s3rver: objects in a
// temporary folder), and the client options that reach it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import S3rver from "s3rver";

export interface LocalS3 {
  endpoint: string;
  /** What the node's restore.s3 option takes to reach it with the right credentials. */
  options: {
    endpoint: string;
    region: string;
    forcePathStyle: boolean;
    accessKeyId: string;
    secretAccessKey: string;
  };
  /** "eventName key" of every object created or removed, in order. */
  events: string[];
  close(): Promise<void>;
}

export async function startS3(buckets: string[]): Promise<LocalS3> {
  const directory = mkdtempSync(join(tmpdir(), "logkv-s3rver-"));
  const server = new S3rver({
    port: 0,
    address: "127.0.0.1",
    directory,
    silent: true,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const events: string[] = [];
  server.on("event", (event) => {
    for (const record of event.Records) events.push(`${record.eventName} ${record.s3.object.key}`);
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    options: {
      endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      accessKeyId: "S3RVER",
      secretAccessKey: "S3RVER",
    },
    events,
    async close() {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
