import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import S3rver from "s3rver";

/** s3rver's fixed credentials: it checks every request's signature against them. */
const CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

export interface ObjectStore {
  endpoint: string;
  bucket: string;
  /** The variables that point the app at this store, under `prefix`. */
  env(prefix: string): Record<string, string>;
  /** An object's bytes read straight from the store, or undefined when there is none. */
  object(key: string): Promise<Buffer | undefined>;
  close(): Promise<void>;
}

/** A real S3-protocol server (s3rver) on a free port, its data in a temporary directory. */
export async function startObjectStore(bucket = "polyforge-test"): Promise<ObjectStore> {
  const directory = await mkdtemp(path.join(tmpdir(), "polyforge-s3-"));
  const server = new S3rver({
    address: "127.0.0.1",
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: CREDENTIALS,
  });
  return {
    endpoint,
    bucket,
    env: (prefix) => ({
      STORAGE_URL: `s3://${bucket}/${prefix}`,
      STORAGE_S3_ENDPOINT: endpoint,
      STORAGE_S3_PATH_STYLE: "on",
      STORAGE_S3_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      STORAGE_S3_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    }),
    async object(key) {
      try {
        const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return Buffer.from(await (answer.Body?.transformToByteArray() ?? new Uint8Array()));
      } catch (err) {
        if ((err as { name?: string }).name === "NoSuchKey") return undefined;
        throw err;
      }
    },
    async close() {
      client.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
