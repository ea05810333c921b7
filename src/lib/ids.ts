import { randomBytes } from "node:crypto";
import { ulid } from "ulid";

/** Public ids carry their kind and sort by creation time: `acc_01J…`, `key_01J…`. */
export type IdPrefix =
  | "acc"
  | "key"
  | "ses"
  | "req"
  | "res"
  | "grant"
  | "gen"
  | "img"
  | "msg"
  | "pay"
  | "bat"
  | "pass"
  | "tpl"
  | "wf"
  | "wfr"
  | "po"
  | "chat";

/**
 * ulid's own source of randomness asks the kernel for one byte per character (16 calls per id,
 * about 2% of the API's CPU under load); this one draws the same bytes from a pool refilled
 * 4 KiB at a time. A byte / 256 is what ulid's default returns, so the ids are as random.
 */
const pool = { bytes: randomBytes(4096), next: 0 };
function pooledRandom(): number {
  if (pool.next === pool.bytes.length) {
    pool.bytes = randomBytes(4096);
    pool.next = 0;
  }
  return (pool.bytes[pool.next++] as number) / 256;
}

export const newId = (prefix: IdPrefix): string =>
  `${prefix}_${ulid(undefined, pooledRandom).toLowerCase()}`;
