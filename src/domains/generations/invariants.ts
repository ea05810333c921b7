import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";

/**
 * Every result agrees with its hold: completed ⇔ the hold posted exactly its cost; failed ⇔ the
 * hold released all of it (voided or expired); an open result never has a posted hold.
 * Returns one line per violation.
 */
export async function checkGenerationInvariants(ctx: ServiceContext): Promise<string[]> {
  const { rows } = await ctx.db.execute<{ violation: string }>(sql`
    select 'result ' || r.id || ' is ' || r.status || ' but its hold is ' || coalesce(h.status::text, 'missing')
           || ' (posted ' || coalesce(h.posted, 0) || ', released ' || coalesce(h.released, 0) || ', cost ' || r.cost || ')' as violation
    from generation_results r left join ledger_holds h on h.id = r.hold_id
    where h.id is null
       or (r.status = 'completed' and not (h.status = 'posted' and h.posted = r.cost and h.released = 0))
       or (r.status = 'failed' and not (h.status in ('voided', 'expired') and h.posted = 0 and h.released = r.cost))
       or (r.status in ('pending', 'processing') and h.status = 'posted')`);
  return rows.map((r) => r.violation);
}
