import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import type { Executor } from "../../db/client.js";

/**
 * Records stored keys to delete. Called in the transaction that stops pointing at them, so
 * that once it commits no row reads the object and the key is not forgotten if the delete
 * fails or the process dies before it.
 */
export async function scheduleDeletions(
  ctx: Pick<ServiceContext, "db">,
  keys: readonly string[],
): Promise<void> {
  if (keys.length === 0) return;
  await ctx.db.execute(sql`
    insert into storage_deletions (key)
    select unnest(${sql.param([...keys])}::text[]) on conflict (key) do nothing`);
}

/**
 * Deletes the objects of every scheduled key from storage, each key's row once its object is
 * gone. A delete that fails keeps its row, with the error and a count of attempts, for the
 * next sweep. Deleting an object that is no longer there is no error, so a key deleted twice
 * (two sweeps at once, or a crash before its row went) is harmless.
 */
export async function deleteScheduled(
  ctx: Pick<ServiceContext, "db" | "storage" | "logger">,
  batch = 500,
): Promise<{ deleted: number; failed: number }> {
  let deleted = 0;
  let failed = 0;
  // Keyset over the key: a failed row stays behind and is not read again in this sweep.
  let after = "";
  for (;;) {
    const { rows } = await ctx.db.execute<{ key: string }>(sql`
      select key from storage_deletions where key > ${after} order by key limit ${batch}`);
    for (const { key } of rows) {
      try {
        await ctx.storage.delete(key);
        await ctx.db.execute(sql`delete from storage_deletions where key = ${key}`);
        deleted++;
      } catch (err) {
        failed++;
        const { rows: counted } = await ctx.db.execute<{ attempts: number }>(sql`
          update storage_deletions set attempts = attempts + 1, last_error = ${String(err)}
          where key = ${key} returning attempts`);
        ctx.logger.warn(
          { err, key, attempts: counted[0]?.attempts },
          "stored object not deleted: the next sweep tries again",
        );
      }
    }
    if (rows.length < batch) break;
    after = (rows.at(-1) as { key: string }).key;
  }
  return { deleted, failed };
}

/**
 * A retention sweep: `forget` takes one batch of at most `limit` rows, stops pointing at their
 * objects and returns the keys, in a transaction that also schedules those keys; batches run
 * until one is short, then the scheduled objects are deleted. Returns how many keys it forgot.
 */
export async function forgetAndDelete(
  ctx: ServiceContext,
  limit: number,
  forget: (db: Executor) => Promise<string[]>,
): Promise<number> {
  let forgotten = 0;
  for (;;) {
    const keys = await ctx.db.transaction(async (db) => {
      const keys = await forget(db);
      await scheduleDeletions({ db }, keys);
      return keys;
    });
    forgotten += keys.length;
    if (keys.length < limit) break;
  }
  await deleteScheduled(ctx);
  return forgotten;
}
