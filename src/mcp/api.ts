import type { catalogJson } from "../domains/catalog/routes.js";
import type { completionJson } from "../domains/chat/wire.js";
import type { generationJson } from "../domains/generations/wire.js";

/** A generation as the API shows it (GET /v1/generate/status). */
export type GenerationJson = ReturnType<typeof generationJson>;
export type ModelJson = ReturnType<typeof catalogJson>["data"][number];
export type ChatCompletionJson = ReturnType<typeof completionJson>;

export interface BalanceJson {
  creditBalance: number;
  heldCredits: number;
  earnings: number;
  membershipTier: string;
  network: string;
}

export interface SpeechJson {
  audioBase64: string;
  contentType: string;
  /** Credits. */
  charged: number;
  upstream: string | null;
  failover: boolean;
}

/** An API refusal, with its stable code: MCP tools return it as a tool error. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/**
 * What the MCP tools need of Polyforge: the HTTP API's own operations and shapes. Over stdio
 * it is the HTTP API at POLYFORGE_API_URL; inside the API (/mcp) it is the same service
 * functions the routes call, with the caller's key.
 */
export interface PolyforgeApi {
  /**
   * POST /v1/generate. With `wait`, the caller is about to wait for the results: the API in
   * this process runs them itself (no queue hop) and `running` ends when they have settled.
   */
  generate(
    body: Record<string, unknown>,
    options?: { wait?: boolean },
  ): Promise<{ generationId: string; cost: number; running?: Promise<void> }>;
  /** GET /v1/generate/status: the generations found, keyed by id; the other ids in notFound. */
  status(
    ids: string[],
  ): Promise<{ generations: Record<string, GenerationJson>; notFound: string[] }>;
  models(): Promise<ModelJson[]>;
  /** POST /v1/audio/speech: the audio (base64), what it was charged and who served it. */
  speech(body: Record<string, unknown>, signal?: AbortSignal): Promise<SpeechJson>;
  /** POST /v1/chat/completions, plain: the whole reply with its usage, cost and routing. */
  chat(body: Record<string, unknown>, signal?: AbortSignal): Promise<ChatCompletionJson>;
  balance(): Promise<BalanceJson>;
  /**
   * Aborts when the process serving these calls begins to shut down (a deploy): a tool that
   * waits answers with what it has then, as the images door answers 202, and the work goes on.
   */
  stopping?: AbortSignal;
}

/** The HTTP API, with an API key: what `polyforge mcp` talks to. */
export function httpApi(baseUrl: string, apiKey: string): PolyforgeApi {
  const base = baseUrl.replace(/\/+$/, "");
  async function send(
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<Response> {
    try {
      return await fetch(`${base}${path}`, {
        method,
        signal: signal ?? null,
        headers: {
          authorization: `Bearer ${apiKey}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(
        "api_unreachable",
        `Polyforge at ${base} cannot be reached: ${(err as Error).message}`,
      );
    }
  }
  const parse = (text: string): unknown => {
    try {
      return text ? JSON.parse(text) : undefined;
    } catch {
      return undefined;
    }
  };
  /** A refusal's body as the ApiError carrying its code. */
  const refusal = (status: number, text: string) => {
    const error = (parse(text) as { error?: { code?: string; message?: string } } | undefined)
      ?.error;
    return new ApiError(
      error?.code ?? "http_error",
      error?.message ?? `Polyforge answered ${status}.`,
      status,
    );
  };
  async function call<T>(
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<T> {
    const res = await send(method, path, body, signal);
    const text = await res.text();
    if (!res.ok) throw refusal(res.status, text);
    return parse(text) as T;
  }
  return {
    generate: (body) => call("POST", "/v1/generate", body),
    status: (ids) =>
      call("GET", `/v1/generate/status?ids=${ids.map(encodeURIComponent).join(",")}`),
    models: async () => (await call<{ data: ModelJson[] }>("GET", "/v1/models")).data,
    chat: (body, signal) => call("POST", "/v1/chat/completions", body, signal),
    speech: async (body, signal) => {
      const res = await send("POST", "/v1/audio/speech", body, signal);
      if (!res.ok) throw refusal(res.status, await res.text());
      return {
        audioBase64: Buffer.from(await res.arrayBuffer()).toString("base64"),
        contentType: res.headers.get("content-type") ?? "application/octet-stream",
        charged: Number(res.headers.get("x-credits-charged") ?? 0),
        upstream: res.headers.get("x-upstream"),
        failover: res.headers.get("x-failover") === "true",
      };
    },
    balance: () => call("GET", "/v1/balance"),
  };
}
