import { and, desc, eq, sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import { AppError, notFound } from "../../errors.js";
import { newId } from "../../lib/ids.js";
import type { Network } from "../../lib/network.js";
import type { NetworkScope } from "../accounts/caller.js";
import { listableBy, pastCursor } from "../passes/published.js";
import { promptTemplates, type TemplateVariable } from "./schema.js";

/** `{{name}}`, spaces inside the braces allowed. */
const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

export const placeholdersOf = (text: string): string[] => [
  ...new Set([...text.matchAll(PLACEHOLDER)].map((m) => m[1] as string)),
];

export interface TemplateInput {
  name: string;
  description: string;
  text: string;
  variables: Record<string, TemplateVariable>;
  visibility: "public" | "unlisted";
}

/** A template as stored: its type is the table's. */
export type Template = typeof promptTemplates.$inferSelect;

export function templateView(t: Template) {
  return {
    id: t.id,
    creatorId: t.creatorId,
    network: t.network,
    name: t.name,
    description: t.description,
    text: t.text,
    variables: t.variables,
    visibility: t.visibility,
    createdAt: t.createdAt,
  };
}

/**
 * A template's text and its declared variables must agree, both ways, and each default must
 * pass its own variable's limits: a template that saves is one that can render.
 */
function assertConsistent(input: TemplateInput) {
  const used = placeholdersOf(input.text);
  const declared = Object.keys(input.variables);
  const undeclared = used.find((name) => !declared.includes(name));
  if (undeclared) {
    throw new AppError(
      "invalid_template",
      `The text uses {{${undeclared}}}, which variables does not declare.`,
      { field: "variables" },
    );
  }
  const unused = declared.find((name) => !used.includes(name));
  if (unused) {
    throw new AppError(
      "invalid_template",
      `Variable ${unused} is declared but the text never uses {{${unused}}}.`,
      { field: `variables.${unused}` },
    );
  }
  for (const [name, variable] of Object.entries(input.variables)) {
    if (variable.default === undefined) continue;
    const problem = valueProblem(name, variable, variable.default);
    if (problem) {
      throw new AppError("invalid_template", `The default of ${problem}`, {
        field: `variables.${name}.default`,
      });
    }
  }
}

function valueProblem(name: string, variable: TemplateVariable, value: string): string | null {
  if (variable.allowed && !variable.allowed.includes(value)) {
    return `${name} must be one of ${variable.allowed.join(", ")}.`;
  }
  if (value.length > variable.maxLength) {
    return `${name} has ${value.length} characters; the limit is ${variable.maxLength}.`;
  }
  return null;
}

export async function createTemplate(
  ctx: ServiceContext,
  scope: NetworkScope,
  input: TemplateInput,
): Promise<Template> {
  assertConsistent(input);
  const [template] = await ctx.db
    .insert(promptTemplates)
    .values({
      id: newId("tpl"),
      creatorId: scope.accountId,
      network: scope.network,
      ...input,
      createdAt: ctx.clock(),
    })
    .returning();
  return template as Template;
}

/** A template on the network, by id: public and unlisted alike (an id is a link). */
export async function getTemplate(
  ctx: ServiceContext,
  network: Network,
  id: string,
  field?: string,
): Promise<Template> {
  const [template] = await ctx.db
    .select()
    .from(promptTemplates)
    .where(and(eq(promptTemplates.id, id), eq(promptTemplates.network, network)));
  if (!template) {
    if (field)
      throw new AppError("template_not_found", `Template ${id} does not exist.`, { field });
    throw notFound("Template");
  }
  return template;
}

/** Public templates on the caller's network and the caller's own, newest first. */
export async function listTemplates(
  ctx: ServiceContext,
  scope: NetworkScope,
  filter: {
    limit: number;
    creatorId?: string | undefined;
    before?: { createdAt: string; id: string } | undefined;
  },
): Promise<Template[]> {
  const before = filter.before && { value: filter.before.createdAt, id: filter.before.id };
  return ctx.db
    .select()
    .from(promptTemplates)
    .where(
      and(
        listableBy(promptTemplates, scope),
        filter.creatorId ? eq(promptTemplates.creatorId, filter.creatorId) : undefined,
        pastCursor(promptTemplates, promptTemplates.createdAt, before, {
          cast: sql`timestamptz`,
          descending: true,
        }),
      ),
    )
    .orderBy(desc(promptTemplates.createdAt), desc(promptTemplates.id))
    .limit(filter.limit);
}

/**
 * Fills a template's variables: each given value or its default. A variable with neither, a
 * value for a variable the template lacks, or one outside its limits: a 400 naming it.
 */
export function renderTemplate(template: Template, values: Record<string, string>): string {
  for (const name of Object.keys(values)) {
    if (!Object.hasOwn(template.variables, name)) {
      throw new AppError(
        "unknown_template_variable",
        `Template ${template.id} has no variable named ${name}.`,
        { field: `templateVariables.${name}`, variable: name },
      );
    }
  }
  const filled: Record<string, string> = {};
  for (const [name, variable] of Object.entries(template.variables)) {
    const value = Object.hasOwn(values, name) ? values[name] : variable.default;
    if (value === undefined) {
      throw new AppError(
        "missing_template_variable",
        `Template variable ${name} has no value and no default.`,
        { field: `templateVariables.${name}`, variable: name },
      );
    }
    const problem = valueProblem(name, variable, value);
    if (problem) {
      throw new AppError("invalid_template_variable", `Template variable ${problem}`, {
        field: `templateVariables.${name}`,
        variable: name,
      });
    }
    filled[name] = value;
  }
  // One pass over the text: a value that itself contains {{…}} is never expanded again.
  return template.text.replace(PLACEHOLDER, (_, name: string) => filled[name] as string).trim();
}
