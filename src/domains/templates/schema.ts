import { sql } from "drizzle-orm";
import { check, index, jsonb, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import { networkEnum } from "../../db/columns.js";
import { accounts } from "../accounts/schema.js";
import { visibilityEnum } from "../passes/schema.js";

/** How one `{{variable}}` of a template may be filled. */
export interface TemplateVariable {
  default?: string | undefined;
  maxLength: number;
  /** When set, the only values accepted. */
  allowed?: string[] | undefined;
}

/** A prompt with `{{variables}}`, filled in by each generation that uses it. One network. */
export const promptTemplates = pgTable(
  "prompt_templates",
  {
    id: text("id").primaryKey(),
    creatorId: text("creator_id")
      .notNull()
      .references(() => accounts.id),
    network: networkEnum("network").notNull(),
    name: text("name").notNull(),
    description: text("description").notNull().default(""),
    text: text("text").notNull(),
    variables: jsonb("variables").$type<Record<string, TemplateVariable>>().notNull(),
    visibility: visibilityEnum("visibility").notNull().default("public"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("prompt_templates_listing_idx").on(t.network, t.createdAt),
    check("prompt_templates_text_length", sql`length(${t.text}) <= 4000`),
  ],
);
