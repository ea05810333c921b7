import type { RequestHandler } from "express";
import { AppError } from "../errors.js";

/**
 * How deep a JSON body may nest. The deepest body a route takes (a workflow's steps, an MCP
 * tool call) is well under 10; anything near this is an attack on code that recurses.
 */
export const MAX_JSON_DEPTH = 32;

/**
 * The first thing in a parsed body or query that must not go further: nesting deeper than
 * `maxDepth`, or a NUL character in a string or a key (PostgreSQL stores neither in text nor in
 * jsonb, and would answer the insert with an error). Walks with its own stack, never recursion,
 * so no input can overflow the call stack here.
 */
export function findHostileValue(
  value: unknown,
  maxDepth = MAX_JSON_DEPTH,
): { kind: "too_deep" } | { kind: "nul"; path: string } | undefined {
  const stack: Array<{ value: unknown; path: string[]; depth: number }> = [
    { value, path: [], depth: 0 },
  ];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const { value: v, path, depth } = item;
    if (typeof v === "string") {
      if (v.includes("\u0000")) return { kind: "nul", path: path.join(".") };
      continue;
    }
    if (v === null || typeof v !== "object") continue;
    if (depth >= maxDepth) return { kind: "too_deep" };
    for (const [key, child] of Object.entries(v)) {
      // A key is named with its NUL written out, so the message itself carries none.
      const childPath = [...path, key.replaceAll("\u0000", "\\u0000")];
      if (key.includes("\u0000")) return { kind: "nul", path: childPath.join(".") };
      stack.push({ value: child, path: childPath, depth: depth + 1 });
    }
  }
  return undefined;
}

/** Refuses what `findHostileValue` finds, as 400 invalid_request naming the field. */
export function assertSafeInput(value: unknown, where: "body" | "query"): void {
  const found = findHostileValue(value);
  if (!found) return;
  if (found.kind === "too_deep") {
    throw new AppError(
      "invalid_request",
      `Invalid request: the ${where} nests deeper than ${MAX_JSON_DEPTH} levels.`,
    );
  }
  const message = "must not contain a NUL character";
  const field = found.path || where;
  throw new AppError("invalid_request", `Invalid request: ${field}: ${message}.`, {
    issues: [{ path: found.path, message }],
  });
}

/**
 * Right after the JSON parser, for every route (MCP's tool calls included): a body or query
 * that nests too deep or carries a NUL character is refused before any route sees it.
 */
export const guardParsedInput: RequestHandler = (req, _res, next) => {
  assertSafeInput(req.body, "body");
  assertSafeInput(req.query, "query");
  next();
};
