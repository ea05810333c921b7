import {
  DeleteObjectCommand,
  GetObjectCommand,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import type { S3StorageConfig } from "../../config.js";
import type { Storage } from "../../ports.js";
import { checkStorageKey } from "./local.js";

/**
 * The Storage port over an S3-compatible object store (AWS S3, Cloudflare R2, MinIO, Backblaze
 * B2): every API and worker process reads and writes the same bucket, under the configured
 * prefix. Credentials are the configured pair, or else the AWS SDK's default chain.
 */
export function s3Storage(config: S3StorageConfig): Storage & { client: S3Client } {
  const client = new S3Client({
    region: config.region,
    endpoint: config.endpoint,
    forcePathStyle: config.pathStyle,
    credentials: config.credentials,
    // Checksums only where the operation needs one: several S3-compatible stores refuse the
    // newer default trailing checksums.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  const objectKey = (key: string) => config.prefix + checkStorageKey(key);
  let closed = false;
  return {
    client,
    close() {
      // Its keep-alive sockets would otherwise hold the process open after the pool closed.
      if (closed) return;
      closed = true;
      client.destroy();
    },
    async put(key, bytes) {
      // A PUT replaces the object whole: a reader never sees half of one.
      await client.send(
        new PutObjectCommand({ Bucket: config.bucket, Key: objectKey(key), Body: bytes }),
      );
    },
    async get(key) {
      try {
        const answer = await client.send(
          new GetObjectCommand({ Bucket: config.bucket, Key: objectKey(key) }),
        );
        if (!answer.Body) return undefined;
        return Buffer.from(await answer.Body.transformToByteArray());
      } catch (err) {
        if (err instanceof NoSuchKey || isNotFound(err)) return undefined;
        throw err;
      }
    },
    async delete(key) {
      // S3 answers 204 whether or not the key existed.
      await client.send(new DeleteObjectCommand({ Bucket: config.bucket, Key: objectKey(key) }));
    },
    async presignedUrl(key, { expiresInSeconds, contentType }) {
      return getSignedUrl(
        client,
        new GetObjectCommand({
          Bucket: config.bucket,
          Key: objectKey(key),
          // The type the bytes were checked to be when stored, whatever the object carries.
          ResponseContentType: contentType,
        }),
        { expiresIn: expiresInSeconds },
      );
    },
  };
}

const isNotFound = (err: unknown) =>
  err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404;
