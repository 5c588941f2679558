// Backups on S3-compatible storage (README.md, "Backups on S3"): the same two files as a
// backup directory, as two objects under `s3://bucket/prefix/<name>/`. items.bin goes
// first (one PutObject, or a multipart upload of partBytes parts read from the local file
// one at a time, so memory stays at one part whatever the table's size); manifest.json
// goes last and is what publishes the backup: a listing only shows names with a manifest,
// and a delete removes the manifest first. A download streams items.bin to a local file.
//
// Errors are typed (S3BackupError, a DbError): a missing bucket NOT_FOUND, refused
// credentials INVALID_CONFIG, an endpoint that does not answer TIMEOUT (retriable); the
// `reason` says which, and the GraphQL resolvers pass it on as extensions.s3.
import { createWriteStream } from "node:fs";
import { mkdir, open, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { DbError, type DbErrorCode } from "../../services/shared/errors.js";
import { TABLE_CHECKPOINT_FORMAT, type TableCheckpointManifest } from "./table-checkpoint.js";

const MANIFEST = "manifest.json";
const ITEMS = "items.bin";
/** S3's smallest part (except the last) is 5 MiB; 8 MiB parts keep 10,000 parts >= 78 GiB. */
const PART_BYTES_DEFAULT = 8 * 1024 * 1024;

export interface S3Options {
  /** e.g. http://127.0.0.1:9000; absent: AWS (or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL). */
  endpoint?: string;
  /** Absent: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1. */
  region?: string;
  /** Path-style addressing (http://host/bucket/key), as MinIO and most non-AWS stores want. */
  forcePathStyle?: boolean;
  /** Absent: the SDK's default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles…). */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Multipart part size; objects larger than one part are uploaded in parts. */
  partBytes?: number;
}

export interface S3Location {
  bucket: string;
  /** Without leading or trailing "/"; "" for the bucket's root. */
  prefix: string;
}

export type S3Failure = "NO_SUCH_BUCKET" | "ACCESS_DENIED" | "UNREACHABLE" | "FAILED";

/** An S3 request that failed, with why (reason) and a DbError code. */
export class S3BackupError extends DbError {
  constructor(
    readonly reason: S3Failure,
    code: DbErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

export function isS3Url(text: string): boolean {
  return text.startsWith("s3://");
}

/** s3://bucket[/prefix]; INVALID_ARGUMENT unless the bucket is a valid S3 bucket name. */
export function parseS3Url(text: string): S3Location {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(text);
  const bucket = match?.[1] ?? "";
  if (match === null || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new DbError("INVALID_ARGUMENT", `want s3://bucket/prefix (bucket: 3-63 of a-z0-9.-)`);
  }
  const prefix = (match[2] ?? "").replace(/^\/+|\/+$/g, "");
  if (prefix.split("/").some((part) => part === "." || part === "..")) {
    throw new DbError("INVALID_ARGUMENT", `an S3 prefix has no . or .. segments: ${text}`);
  }
  return { bucket, prefix };
}

export function s3Url(location: S3Location): string {
  return `s3://${location.bucket}${location.prefix === "" ? "" : `/${location.prefix}`}`;
}

/** s3://bucket/prefix/name → the location and the backup's name. */
export function splitBackupUrl(text: string): { location: S3Location; name: string } {
  const { bucket, prefix } = parseS3Url(text);
  const at = prefix.lastIndexOf("/");
  const name = prefix.slice(at + 1);
  if (name === "") throw new DbError("INVALID_ARGUMENT", `no backup name in ${text}`);
  return { location: { bucket, prefix: at < 0 ? "" : prefix.slice(0, at) }, name };
}

function keyOf(location: S3Location, name: string, file: string): string {
  return location.prefix === "" ? `${name}/${file}` : `${location.prefix}/${name}/${file}`;
}

export class S3Backups {
  private readonly client: S3Client;
  private readonly partBytes: number;

  constructor(options: S3Options = {}) {
    // The SDK warns once per process that its releases after January 2027 need Node 22.
    // That one warning (and only it: the SDK's own switch, honoured if already set) is
    // kept out of logs and test output; every other process warning still shows.
    process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] ??= "true";
    const { accessKeyId, secretAccessKey } = options;
    this.client = new S3Client({
      ...(options.endpoint !== undefined && { endpoint: options.endpoint }),
      region:
        options.region ??
        process.env["AWS_REGION"] ??
        process.env["AWS_DEFAULT_REGION"] ??
        "us-east-1",
      forcePathStyle: options.forcePathStyle ?? false,
      ...(accessKeyId !== undefined &&
        secretAccessKey !== undefined && { credentials: { accessKeyId, secretAccessKey } }),
      // An endpoint that does not answer fails in seconds, not after long retries.
      maxAttempts: 2,
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 120_000 },
    });
    this.partBytes = Math.max(options.partBytes ?? PART_BYTES_DEFAULT, 5 * 1024 * 1024);
  }

  close(): void {
    this.client.destroy();
  }

  /**
   * Uploads the published backup directory `dir` (table-checkpoint.ts) as backup `name`;
   * ALREADY_EXISTS when the location holds a backup of that name.
   */
  async upload(dir: string, location: S3Location, name: string): Promise<TableCheckpointManifest> {
    await this.checkBucket(location);
    const manifestKey = keyOf(location, name, MANIFEST);
    if (await this.exists(location, manifestKey)) {
      throw new DbError("ALREADY_EXISTS", `${s3Url(location)}/${name} already exists`);
    }
    const manifestText = await readFile(join(dir, MANIFEST), "utf8");
    await this.uploadFile(location, keyOf(location, name, ITEMS), join(dir, ITEMS));
    await this.call(location, () =>
      this.client.send(
        new PutObjectCommand({
          Bucket: location.bucket,
          Key: manifestKey,
          Body: manifestText,
          ContentType: "application/json",
        }),
      ),
    );
    return parseManifest(manifestText, `${s3Url(location)}/${name}`);
  }

  /** One PutObject up to a part; a multipart upload (one part in memory at a time) above. */
  private async uploadFile(location: S3Location, key: string, path: string): Promise<void> {
    const size = (await stat(path)).size;
    const handle = await open(path, "r");
    try {
      const read = async (position: number, length: number) => {
        const buffer = Buffer.alloc(length);
        const { bytesRead } = await handle.read(buffer, 0, length, position);
        if (bytesRead !== length) throw new DbError("STORAGE_ERROR", `${path} shrank`);
        return buffer;
      };
      if (size <= this.partBytes) {
        const body = await read(0, size);
        await this.call(location, () =>
          this.client.send(new PutObjectCommand({ Bucket: location.bucket, Key: key, Body: body })),
        );
        return;
      }
      const { UploadId } = await this.call(location, () =>
        this.client.send(new CreateMultipartUploadCommand({ Bucket: location.bucket, Key: key })),
      );
      try {
        const parts: { ETag: string; PartNumber: number }[] = [];
        for (let position = 0, part = 1; position < size; position += this.partBytes, part++) {
          const body = await read(position, Math.min(this.partBytes, size - position));
          const { ETag } = await this.call(location, () =>
            this.client.send(
              new UploadPartCommand({
                Bucket: location.bucket,
                Key: key,
                UploadId,
                PartNumber: part,
                Body: body,
                ContentLength: body.length,
              }),
            ),
          );
          parts.push({ ETag: ETag ?? "", PartNumber: part });
        }
        await this.call(location, () =>
          this.client.send(
            new CompleteMultipartUploadCommand({
              Bucket: location.bucket,
              Key: key,
              UploadId,
              MultipartUpload: { Parts: parts },
            }),
          ),
        );
      } catch (error) {
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket: location.bucket, Key: key, UploadId }))
          .catch(() => undefined);
        throw error;
      }
    } finally {
      await handle.close();
    }
  }

  /** The published backups directly under the location, oldest first. */
  async list(location: S3Location): Promise<TableCheckpointManifest[]> {
    await this.checkBucket(location);
    const base = location.prefix === "" ? "" : `${location.prefix}/`;
    const names: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.call(location, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: location.bucket,
            Prefix: base,
            ContinuationToken: token,
          }),
        ),
      );
      for (const object of page.Contents ?? []) {
        const rest = (object.Key ?? "").slice(base.length).split("/");
        if (rest.length === 2 && rest[1] === MANIFEST && rest[0] !== "") names.push(rest[0]!);
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    const manifests: TableCheckpointManifest[] = [];
    for (const name of names) {
      try {
        manifests.push(await this.readManifest(location, name));
      } catch (error) {
        // Deleted meanwhile, or not a backup of ours: not listed. S3 failing is an error.
        if (error instanceof S3BackupError) throw error;
      }
    }
    return manifests.sort((a, b) => a.createdAtMs - b.createdAtMs);
  }

  /** A backup's manifest; NOT_FOUND when there is no backup of that name. */
  async manifest(location: S3Location, name: string): Promise<TableCheckpointManifest> {
    await this.checkBucket(location);
    return this.readManifest(location, name);
  }

  private async readManifest(location: S3Location, name: string) {
    const where = `${s3Url(location)}/${name}`;
    const answer = await this.call(location, () =>
      this.client.send(
        new GetObjectCommand({ Bucket: location.bucket, Key: keyOf(location, name, MANIFEST) }),
      ),
    ).catch((error: unknown) => {
      if (isNotFound(error)) throw new DbError("NOT_FOUND", `no backup at ${where}`);
      throw error;
    });
    return parseManifest(await answer.Body!.transformToString("utf8"), where);
  }

  /** Unpublishes (manifest first) and deletes a backup; its manifest. */
  async delete(location: S3Location, name: string): Promise<TableCheckpointManifest> {
    const manifest = await this.manifest(location, name);
    for (const file of [MANIFEST, ITEMS]) {
      await this.call(location, () =>
        this.client.send(
          new DeleteObjectCommand({ Bucket: location.bucket, Key: keyOf(location, name, file) }),
        ),
      );
    }
    return manifest;
  }

  /** Streams a backup into the local directory `dir` (created) as a backup directory. */
  async download(
    location: S3Location,
    name: string,
    dir: string,
  ): Promise<TableCheckpointManifest> {
    const manifest = await this.manifest(location, name);
    await mkdir(dir, { recursive: true });
    const answer = await this.call(location, () =>
      this.client.send(
        new GetObjectCommand({ Bucket: location.bucket, Key: keyOf(location, name, ITEMS) }),
      ),
    );
    try {
      await pipeline(answer.Body as Readable, createWriteStream(join(dir, ITEMS)));
    } catch (error) {
      throw this.failure(location, error);
    }
    await writeFile(join(dir, MANIFEST), JSON.stringify(manifest, null, 1));
    return manifest;
  }

  private async exists(location: S3Location, key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: location.bucket, Key: key }));
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw this.failure(location, error);
    }
  }

  /** NOT_FOUND (NO_SUCH_BUCKET) when the bucket does not exist. */
  private async checkBucket(location: S3Location): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: location.bucket }));
    } catch (error) {
      if (isNotFound(error)) throw noSuchBucket(location, error);
      throw this.failure(location, error);
    }
  }

  private async call<T>(location: S3Location, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (isNotFound(error)) throw error; // the caller knows what was missing
      throw this.failure(location, error);
    }
  }

  private failure(location: S3Location, error: unknown): DbError {
    if (error instanceof DbError) return error;
    const e = error as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
    const where = s3Url(location);
    if (e.name === "NoSuchBucket") return noSuchBucket(location, error);
    const denied = ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden"];
    if (denied.includes(e.name ?? "") || e.$metadata?.httpStatusCode === 403) {
      return new S3BackupError(
        "ACCESS_DENIED",
        "INVALID_CONFIG",
        `S3 refused the credentials for ${where} (${e.name ?? "403"})`,
        { cause: error },
      );
    }
    const unreachable = ["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ETIMEDOUT", "ECONNRESET"];
    if (
      unreachable.includes(e.code ?? "") ||
      e.name === "TimeoutError" ||
      unreachable.some((code) => String((error as Error).message ?? "").includes(code))
    ) {
      return new S3BackupError("UNREACHABLE", "TIMEOUT", `S3 endpoint unreachable for ${where}`, {
        cause: error,
      });
    }
    const message = (error as Error).message ?? String(error);
    return new S3BackupError("FAILED", "STORAGE_ERROR", `S3 ${where}: ${message}`, {
      cause: error,
    });
  }
}

function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === "NoSuchKey" || e.name === "NotFound" || e.$metadata?.httpStatusCode === 404;
}

function noSuchBucket(location: S3Location, cause: unknown): S3BackupError {
  return new S3BackupError("NO_SUCH_BUCKET", "NOT_FOUND", `no S3 bucket ${location.bucket}`, {
    cause,
  });
}

function parseManifest(text: string, where: string): TableCheckpointManifest {
  let manifest: TableCheckpointManifest;
  try {
    manifest = JSON.parse(text) as TableCheckpointManifest;
  } catch (error) {
    throw new DbError("CORRUPT_DATA", `${where}: manifest is not JSON`, { cause: error });
  }
  if (manifest.format !== TABLE_CHECKPOINT_FORMAT) {
    throw new DbError("CORRUPT_DATA", `${where}: backup format ${manifest.format} unsupported`);
  }
  return manifest;
}
