import { sql } from "drizzle-orm";
import { bigint, check, integer, pgTable, primaryKey, text } from "drizzle-orm/pg-core";
import { stylePasses } from "../passes/schema.js";
import { generations } from "./schema.js";

/**
 * The passes a generation applied, in order, with the fee each of its model results pays for
 * the pass as quoted (zero for the creator's own pass): royalties are paid from this record,
 * never from the pass's current fee. A generation's own record (written with it at submission),
 * so it lives here; the passes domain reads it through `appliedPasses` (settlement.ts). Its own
 * file, not schema.ts, because it references style_passes, whose schema imports this domain's.
 */
export const generationPasses = pgTable(
  "generation_passes",
  {
    generationId: text("generation_id")
      .notNull()
      .references(() => generations.id),
    passId: text("pass_id")
      .notNull()
      .references(() => stylePasses.id),
    position: integer("position").notNull(),
    creatorId: text("creator_id").notNull(),
    fee: bigint("fee", { mode: "bigint" }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.generationId, t.passId] }),
    check("generation_passes_fee_non_negative", sql`${t.fee} >= 0`),
  ],
);
