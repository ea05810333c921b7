import type { z } from "zod";
import { notFound } from "../errors.js";

/**
 * Path parameters. An id that cannot name anything (`/v1/passes/banana`) is answered as an id
 * that names nothing is, `404` for that thing, not a 400 about its format: a client asks for
 * a resource, and either it is there or it is not.
 */
export function pathParams<T extends z.ZodType>(
  schema: T,
  params: unknown,
  what: string,
): z.infer<T> {
  const parsed = schema.safeParse(params);
  if (!parsed.success) throw notFound(what);
  return parsed.data;
}
