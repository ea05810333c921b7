import {
  ApiError,
  type ChatCompletionJson,
  type GenerationJson,
  type ModelJson,
  type PolyforgeApi,
} from "../../packages/mcp/src/api.js";

/**
 * The HTTP API, with an API key: what `polyforge mcp` talks to. Not the package's http-api.ts,
 * which runs on @polyforge/client's built dist: `npm ci` and `npm start` build no package, and
 * this runs from source under tsx.
 */
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
      call<{ generations: Record<string, GenerationJson>; notFound: string[] }>(
        "GET",
        `/v1/generate/status?ids=${ids.map(encodeURIComponent).join(",")}`,
      ),
    models: async () => (await call<{ data: ModelJson[] }>("GET", "/v1/models")).data,
    chat: (body, signal) => call<ChatCompletionJson>("POST", "/v1/chat/completions", body, signal),
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
