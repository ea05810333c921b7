import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";

import type { Storage } from "../../ports.js";

export type { Storage };

const EXTENSIONS: Record<string, string> = {
  "image/png": "png",
  "image/jpeg": "jpg",
  "image/webp": "webp",
  "image/gif": "gif",
  "video/mp4": "mp4",
  "audio/wav": "wav",
  "audio/mpeg": "mp3",
};

/** The file extension stored files of a content type get ("bin" for others). */
export const extensionOf = (contentType: string) => EXTENSIONS[contentType] ?? "bin";

const SAFE_KEY = /^[\w.-]+(\/[\w.-]+)*$/;

/** Refuses a key that could name anything outside the store (`..`, absolute, odd characters). */
export function checkStorageKey(key: string): string {
  if (!SAFE_KEY.test(key) || key.split("/").includes("..")) {
    throw new Error(`unsafe storage key ${key}`);
  }
  return key;
}

export function localStorage(root: string): Storage {
  const resolve = (key: string) => path.join(root, checkStorageKey(key));
  return {
    async put(key, bytes) {
      const file = resolve(key);
      await mkdir(path.dirname(file), { recursive: true });
      // Write then rename: a reader never sees half a file, and a rerun just replaces it.
      const partial = `${file}.${process.pid}.partial`;
      await writeFile(partial, bytes);
      await rename(partial, file);
    },
    async get(key) {
      try {
        return await readFile(resolve(key));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw err;
      }
    },
    async delete(key) {
      // force: a file already gone is what was asked for.
      await rm(resolve(key), { force: true });
    },
  };
}
