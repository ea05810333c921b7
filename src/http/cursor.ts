import { z } from "zod";
import { AppError } from "../errors.js";

/**
 * List cursors: the last item's sort position, as a JSON tuple in base64url, opaque to
 * clients. A cursor that does not parse against the listing's own tuple is a 400.
 */
export const encodeCursor = (position: readonly unknown[]): string =>
  Buffer.from(JSON.stringify(position)).toString("base64url");

export function decodeCursor<T extends z.ZodType>(cursor: string, tuple: T): z.infer<T> {
  try {
    return tuple.parse(JSON.parse(Buffer.from(cursor, "base64url").toString()));
  } catch {
    throw new AppError("invalid_request", "Invalid cursor.");
  }
}

/**
 * One page of a listing: fetches one row more than the page holds, so whether another page
 * follows is known without a count; the next cursor is the last row's, only then.
 */
export async function pageOf<Row>(
  limit: number,
  fetch: (limit: number) => Promise<Row[]>,
  cursorOf: (last: Row) => string,
): Promise<{ data: Row[]; nextCursor: string | null }> {
  const rows = await fetch(limit + 1);
  const data = rows.slice(0, limit);
  const last = data.at(-1);
  return { data, nextCursor: rows.length > limit && last ? cursorOf(last) : null };
}

/** The answer of a list route: one page of `item`, and the cursor of the next (as pageOf makes). */
export const pageSchema = <Item extends z.ZodType>(item: Item) =>
  z.object({
    data: z.array(item),
    nextCursor: z.string().nullable(),
  });

/**
 * A time as PostgreSQL prints it ("2026-11-21 19:20:01.123456+00"), to the microsecond, which
 * a JS Date would cut to the millisecond; checked to be a real time, so a forged one is a 400.
 */
export const pgTimestampText = z
  .string()
  .max(40)
  .regex(/^\d{4}-\d\d-\d\d[ T][\d:.]+([+-]\d\d(:?\d\d)?|Z)?$/)
  .refine(
    (text) => !Number.isNaN(Date.parse(text.replace(" ", "T").replace(/([+-]\d\d)$/, "$1:00"))),
    "not a time",
  );
