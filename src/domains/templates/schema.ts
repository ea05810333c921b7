import { sql } from "drizzle-orm";
import { check, index, jsonb, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import { publishedColumns, visibilityColumn } from "../passes/schema.js";

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
    ...publishedColumns(),
    text: text("text").notNull(),
    variables: jsonb("variables").$type<Record<string, TemplateVariable>>().notNull(),
    visibility: visibilityColumn(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("prompt_templates_listing_idx").on(t.network, t.createdAt),
    check("prompt_templates_text_length", sql`length(${t.text}) <= 4000`),
  ],
);
