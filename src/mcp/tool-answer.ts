import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { ApiError } from "./api.js";

/** What every tool handler is given besides its input: progress notifications and the abort. */
export type ToolExtra = {
  _meta?: { progressToken?: string | number };
  sendNotification: (n: {
    method: "notifications/progress";
    params: { progressToken: string | number; progress: number; total: number; message?: string };
  }) => Promise<void>;
  signal: AbortSignal;
};

/** Annotations of a tool that spends credits upstream. */
export const generating = {
  readOnlyHint: false,
  destructiveHint: false,
  idempotentHint: false,
  openWorldHint: true,
};
/** Annotations of a tool that only reads the caller's own data. */
export const reading = { readOnlyHint: true, openWorldHint: false };

/** An API refusal as a tool error carrying the API's code; anything else stays internal. */
const toolError = (err: unknown): CallToolResult => {
  const error =
    err instanceof ApiError
      ? { code: err.code, message: err.message }
      : { code: "internal_error", message: "The tool failed unexpectedly." };
  return {
    isError: true,
    content: [{ type: "text", text: `${error.code}: ${error.message}` }],
  };
};

/** A tool's answer: its structured content with a text copy, or the API's refusal as an error. */
export async function answer(
  work: () => Promise<Record<string, unknown>>,
): Promise<CallToolResult> {
  try {
    const structured = await work();
    return {
      content: [{ type: "text", text: JSON.stringify(structured) }],
      structuredContent: structured,
    };
  } catch (err) {
    return toolError(err);
  }
}
