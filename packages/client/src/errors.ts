import type { operations } from "./schema.js";

type Values<T> = T[keyof T];
type JsonBodies<R> = Values<{
  [S in keyof R]: R[S] extends { content: { "application/json": infer B } } ? B : never;
}>;
type CodeOf<B> = B extends { error: { code: infer C } } ? C : never;

/** Every stable error `code` the API documents (read from openapi.json's error responses). */
export type ApiErrorCode = CodeOf<JsonBodies<Values<operations>["responses"]>>;

/**
 * Codes the client itself gives, for refusals made before or without an API answer:
 * `spend_cap_per_call` and `spend_cap_per_day` (x402 spend controls, nothing signed),
 * `timeout` (generate() waited longer than timeoutMs), `aborted` (the caller's signal),
 * `payment_pending` (a paid call whose settlement is still confirming on chain), and
 * `unexpected_response` (an answer that is not the API's error envelope).
 */
export type ClientErrorCode =
  | "spend_cap_per_call"
  | "spend_cap_per_day"
  | "timeout"
  | "aborted"
  | "payment_pending"
  | "unexpected_response";

export type PolyforgeErrorCode = ApiErrorCode | ClientErrorCode;

/** An API refusal (status ≥ 400 with `{ error: { code, message, requestId, … } }`) or a local one (status 0). */
export class PolyforgeError extends Error {
  override readonly name = "PolyforgeError";
  /** The HTTP status; 0 when the client refused locally. */
  readonly status: number;
  readonly code: PolyforgeErrorCode;
  /** The error's other fields (need/have, field, issues, …). */
  readonly details: Record<string, unknown>;
  /** The request's id (X-Request-Id), when the API answered. */
  readonly requestId: string | undefined;

  constructor(init: {
    status: number;
    code: PolyforgeErrorCode;
    message: string;
    details?: Record<string, unknown>;
    requestId?: string | undefined;
  }) {
    super(init.message);
    this.status = init.status;
    this.code = init.code;
    this.details = init.details ?? {};
    this.requestId = init.requestId;
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value);

/** The PolyforgeError for an API answer that is not a success, from its parsed body. */
export function errorFromResponse(response: Response, body: unknown): PolyforgeError {
  const requestId = response.headers.get("x-request-id") ?? undefined;
  const error = isRecord(body) ? body.error : undefined;
  if (isRecord(error) && typeof error.code === "string") {
    const { code, message, requestId: bodyRequestId, ...details } = error;
    return new PolyforgeError({
      status: response.status,
      code: code as ApiErrorCode,
      message: typeof message === "string" ? message : code,
      details,
      requestId: typeof bodyRequestId === "string" ? bodyRequestId : requestId,
    });
  }
  return new PolyforgeError({
    status: response.status,
    code: "unexpected_response",
    message: `Unexpected answer: HTTP ${response.status}`,
    details: { body },
    requestId,
  });
}
