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
  | "po";

export const newId = (prefix: IdPrefix): string => `${prefix}_${ulid().toLowerCase()}`;
