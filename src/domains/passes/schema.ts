import { sql } from "drizzle-orm";
import {
  bigint,
  check,
  index,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
} from "drizzle-orm/pg-core";
import { networkEnum } from "../../db/columns.js";
import { accounts } from "../accounts/schema.js";
import { generationResults, mediaTypeEnum } from "../generations/schema.js";

export const visibilityEnum = pgEnum("visibility", ["public", "unlisted"]);

/**
 * The columns every creator's published item has (a style pass, a prompt template): its id,
 * the creator, the one network it lives on, and how it is listed. A function, because each
 * table needs its own column builders.
 */
export const publishedColumns = () => ({
  id: text("id").primaryKey(),
  creatorId: text("creator_id")
    .notNull()
    .references(() => accounts.id),
  network: networkEnum("network").notNull(),
  name: text("name").notNull(),
  description: text("description").notNull().default(""),
});
/** How a published item is listed: `public` to everyone on its network, `unlisted` by link. */
export const visibilityColumn = () => visibilityEnum("visibility").notNull().default("public");

/** Defaults a pass gives the request options its caller left out. */
export interface PassDefaults {
  aspectRatio?: string | undefined;
  resolution?: string | undefined;
}

/**
 * A creator's style pass: a prompt fragment (and a negative prompt, default options) that
 * others apply to their generations for a per-use fee in credits. A pass belongs to one
 * network. Archived passes stay, so past generations keep what they used.
 */
export const stylePasses = pgTable(
  "style_passes",
  {
    ...publishedColumns(),
    stylePrompt: text("style_prompt").notNull(),
    negativePrompt: text("negative_prompt"),
    defaults: jsonb("defaults").$type<PassDefaults>().notNull().default({}),
    previewImageIds: text("preview_image_ids").array().notNull().default(sql`'{}'`),
    tags: text("tags").array().notNull().default(sql`'{}'`),
    mediaType: mediaTypeEnum("media_type").notNull(),
    /** Credits per use: each model result that applies the pass. */
    fee: bigint("fee", { mode: "bigint" }).notNull(),
    visibility: visibilityColumn(),
    /** Charged model results that applied it (a counter for sorting by popularity). */
    uses: bigint("uses", { mode: "bigint" }).notNull().default(sql`0`),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    archivedAt: timestamp("archived_at", { withTimezone: true }),
  },
  (t) => [
    check("style_passes_fee_non_negative", sql`${t.fee} >= 0`),
    index("style_passes_listing_idx").on(t.network, t.createdAt),
    index("style_passes_creator_idx").on(t.creatorId, t.network),
    index("style_passes_tags_idx").using("gin", t.tags),
  ],
);

/**
 * One use of a pass: a charged model result that applied it, with the fee paid and the
 * creator's royalty. The key makes a royalty payable once per result and pass, whatever runs
 * twice; analytics read this table.
 */
export const passUses = pgTable(
  "pass_uses",
  {
    resultId: text("result_id")
      .notNull()
      .references(() => generationResults.id),
    passId: text("pass_id")
      .notNull()
      .references(() => stylePasses.id),
    network: networkEnum("network").notNull(),
    creatorId: text("creator_id").notNull(),
    /** The account that generated. */
    userId: text("user_id").notNull(),
    fee: bigint("fee", { mode: "bigint" }).notNull(),
    royalty: bigint("royalty", { mode: "bigint" }).notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.resultId, t.passId] }),
    check("pass_uses_royalty_within_fee", sql`${t.royalty} >= 0 and ${t.royalty} <= ${t.fee}`),
    index("pass_uses_pass_created_idx").on(t.passId, t.createdAt),
    index("pass_uses_creator_created_idx").on(t.creatorId, t.network, t.createdAt),
  ],
);
