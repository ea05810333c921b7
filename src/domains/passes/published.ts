import { and, eq, or, type SQL, sql } from "drizzle-orm";
import type { AnyPgColumn } from "drizzle-orm/pg-core";
import type { NetworkScope } from "../accounts/caller.js";

/** The columns `publishedColumns` and `visibilityColumn` give a table (schema.ts). */
interface PublishedTable {
  id: AnyPgColumn;
  creatorId: AnyPgColumn;
  network: AnyPgColumn;
  visibility: AnyPgColumn;
}

/**
 * What a caller may list of creators' published items (style passes, prompt templates): those
 * on the caller's network that are public, and the caller's own unlisted ones. An unlisted item
 * is reached only by its id, never by a listing.
 */
export function listableBy(table: PublishedTable, scope: NetworkScope): SQL | undefined {
  return and(
    eq(table.network, scope.network),
    or(eq(table.visibility, "public"), eq(table.creatorId, scope.accountId)),
  );
}

/**
 * Keyset paging over a listing ordered by (`column`, id): the rows strictly past the previous
 * page's last one, whose sort value (cast to the column's type) and id the cursor carries.
 */
export function pastCursor(
  table: PublishedTable,
  column: AnyPgColumn,
  cursor: { value: string; id: string } | undefined,
  { cast, descending }: { cast: SQL; descending: boolean },
): SQL | undefined {
  if (!cursor) return undefined;
  return sql`(${column}, ${table.id}) ${descending ? sql`<` : sql`>`} (${cursor.value}::${cast}, ${cursor.id})`;
}
