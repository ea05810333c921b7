import type { ClientEvmSigner } from "@x402/evm";
import createFetchClient, { type Client, type Middleware } from "openapi-fetch";
import { errorFromResponse, PolyforgeError } from "./errors.js";
import { IDEMPOTENT_POSTS } from "./operations.js";
import type { components, paths } from "./schema.js";
import { type PaymentNetwork, payingFetch, SpendLedger, type SpendLimits } from "./x402.js";

export type { ApiErrorCode, ClientErrorCode, PolyforgeErrorCode } from "./errors.js";
export { errorFromResponse, PolyforgeError } from "./errors.js";
export type { components, operations, paths } from "./schema.js";
export type { PaymentNetwork, SpendLimits } from "./x402.js";
export { amountPaid, SpendLedger } from "./x402.js";

type Schemas = components["schemas"];
export type Generation = Schemas["Generation"];
export type GenerateRequest = NonNullable<
  paths["/v1/generate"]["post"]["requestBody"]
>["content"]["application/json"];
export type ChatRequest = NonNullable<
  paths["/v1/chat/completions"]["post"]["requestBody"]
>["content"]["application/json"];
export type ChatCompletion =
  paths["/v1/chat/completions"]["post"]["responses"]["200"]["content"]["application/json"];
export type Balance =
  paths["/v1/balance"]["get"]["responses"]["200"]["content"]["application/json"];
export type Models = paths["/v1/models"]["get"]["responses"]["200"]["content"]["application/json"];

/** A finished generation, with what a call paid with x402 adds. */
export type GenerateResult = Generation & {
  /** gat_…: reads this generation without an API key (paid calls only). */
  accessToken?: string;
  /** The x402 payment's receipt (paid calls only). */
  payment?: Schemas["PaymentReceipt"];
};

export interface ClientOptions {
  /** An sk_test_… or sk_live_… key. Without one, `wallet` pays per call. */
  apiKey?: string;
  /** A viem account (e.g. privateKeyToAccount(…)) that pays per call with x402 (USDC). */
  wallet?: ClientEvmSigner;
  /** Spend controls for `wallet`, in USDC base units (1_000_000 = $1). */
  maxPerCall?: bigint;
  maxPerDay?: bigint;
  /** Where `wallet`'s payments are counted: pass one to read what it paid today. */
  ledger?: SpendLedger;
  /** The networks `wallet` may pay on (CAIP-2). Default Base and Base Sepolia. */
  networks?: readonly PaymentNetwork[];
  /** Default http://localhost:3000. */
  baseUrl?: string;
  /** The fetch to use underneath. Default globalThis.fetch. */
  fetch?: typeof fetch;
  /**
   * Retries of a request that failed to connect or got 502/503/504 (default 2): GETs, and
   * POSTs that carry an Idempotency-Key (the same key each time). Paid POSTs are never retried.
   */
  retries?: number;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** Overall wait for generate(); default 10 minutes. */
  timeoutMs?: number;
  /** The create's Idempotency-Key; default a random UUID per call. */
  idempotencyKey?: string;
}

export interface PolyforgeClient {
  /** Every route of the API, typed from openapi.json (openapi-fetch). */
  readonly api: Client<paths>;
  /** Submits a generation (POST /v1/generate) and waits for it: events stream, else polling. */
  generate(body: GenerateRequest, options?: CallOptions): Promise<GenerateResult>;
  chat(body: ChatRequest, options?: Omit<CallOptions, "timeoutMs">): Promise<ChatCompletion>;
  balance(options?: { signal?: AbortSignal }): Promise<Balance>;
  models(options?: { signal?: AbortSignal }): Promise<Models>;
}

const RETRY_STATUSES = new Set([502, 503, 504]);
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });

function retrying(inner: typeof fetch, retries: number, paying: boolean): typeof fetch {
  return async (input, init) => {
    const request = new Request(input, init);
    const retryable =
      request.method === "GET" ||
      (!paying && request.method === "POST" && request.headers.has("idempotency-key"));
    for (let attempt = 0; ; attempt++) {
      const last = !retryable || attempt >= retries;
      try {
        const response = await inner(last ? request : request.clone());
        if (last || !RETRY_STATUSES.has(response.status)) return response;
        await response.body?.cancel();
      } catch (err) {
        if (last || request.signal.aborted || err instanceof PolyforgeError) throw err;
      }
      await sleep(200 * 2 ** attempt, request.signal);
    }
  };
}

/** A typed client for the Polyforge API. */
export function createClient(options: ClientOptions = {}): PolyforgeClient {
  const base = options.fetch ?? globalThis.fetch;
  const limits: SpendLimits = { maxPerCall: options.maxPerCall, maxPerDay: options.maxPerDay };
  const paying = options.apiKey === undefined && options.wallet !== undefined;
  const transport = paying
    ? payingFetch(
        base,
        options.wallet as ClientEvmSigner,
        limits,
        options.ledger ?? new SpendLedger(),
        options.networks,
      )
    : base;
  const api = createFetchClient<paths>({
    baseUrl: (options.baseUrl ?? "http://localhost:3000").replace(/\/$/, ""),
    fetch: retrying(transport, options.retries ?? 2, paying),
  });
  const defaults: Middleware = {
    onRequest({ request, schemaPath }) {
      if (options.apiKey && !request.headers.has("authorization"))
        request.headers.set("authorization", `Bearer ${options.apiKey}`);
      if (
        request.method === "POST" &&
        IDEMPOTENT_POSTS.includes(schemaPath) &&
        !request.headers.has("idempotency-key")
      )
        request.headers.set("idempotency-key", crypto.randomUUID());
      return request;
    },
  };
  api.use(defaults);

  const unwrap = <T>(result: { data?: T; error?: unknown; response: Response }): T => {
    if (result.data === undefined || result.error !== undefined)
      throw errorFromResponse(result.response, result.error);
    return result.data;
  };

  async function waitFor(
    id: string,
    token: string | undefined,
    signal: AbortSignal,
  ): Promise<Generation> {
    const headers = token ? { authorization: `Bearer ${token}` } : undefined;
    // The events stream first; it ends with `done`, or `reconnect` when its instance stops.
    // A stream that cannot be had (refused, unreachable, cut) leaves the waiting to polling,
    // which reports a real refusal (a bad token) as a PolyforgeError.
    for (let streams = 0; streams < 5; streams++) {
      let generation: Generation | undefined;
      try {
        generation = await streamUntilDone(id, headers, signal);
      } catch (err) {
        if (signal.aborted) throw err;
        break;
      }
      if (generation) return generation;
    }
    // Then polling, with backoff.
    for (let delay = 250; ; delay = Math.min(delay * 1.5, 5_000)) {
      const status = unwrap(
        await api.GET("/v1/generate/status", { params: { query: { ids: id } }, headers, signal }),
      );
      const generation = status.generations[id];
      if (generation && (generation.status === "completed" || generation.status === "failed"))
        return generation;
      await sleep(delay, signal);
    }
  }

  async function streamUntilDone(
    id: string,
    headers: Record<string, string> | undefined,
    signal: AbortSignal,
  ): Promise<Generation | undefined> {
    const { response, error } = await api.GET("/v1/generate/{id}/events", {
      params: { path: { id } },
      headers: { ...headers, accept: "text/event-stream" },
      parseAs: "stream",
      signal,
    });
    if (!response.ok) throw errorFromResponse(response, error);
    if (!response.body) return undefined;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return undefined;
        buffer += value;
        let end = buffer.search(/\r?\n\r?\n/);
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
          let event = "message";
          const data: string[] = [];
          for (const line of block.split(/\r?\n/)) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (event === "done" && data.length) return JSON.parse(data.join("\n")) as Generation;
          if (event === "reconnect") return undefined;
          end = buffer.search(/\r?\n\r?\n/);
        }
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
  }

  return {
    api,
    async generate(body, { signal, timeoutMs = 600_000, idempotencyKey } = {}) {
      const timeout = AbortSignal.timeout(timeoutMs);
      const all = signal ? AbortSignal.any([signal, timeout]) : timeout;
      try {
        const submitted = unwrap(
          await api.POST("/v1/generate", {
            body,
            headers: idempotencyKey ? { "idempotency-key": idempotencyKey } : undefined,
            signal: all,
          }),
        );
        if ("status" in submitted) {
          throw new PolyforgeError({
            status: 202,
            code: "payment_pending",
            message: submitted.message,
            details: { payment: submitted.payment },
          });
        }
        const paid = "accessToken" in submitted ? submitted : undefined;
        const generation = await waitFor(
          submitted.generationId,
          paid?.accessToken ?? options.apiKey,
          all,
        );
        return paid
          ? { ...generation, accessToken: paid.accessToken, payment: paid.payment }
          : generation;
      } catch (err) {
        if (err instanceof PolyforgeError) throw err;
        if (timeout.aborted && !signal?.aborted)
          throw new PolyforgeError({
            status: 0,
            code: "timeout",
            message: `The generation did not finish within ${timeoutMs} ms.`,
          });
        if (signal?.aborted)
          throw new PolyforgeError({
            status: 0,
            code: "aborted",
            message: "Aborted by the caller.",
          });
        throw err;
      }
    },
    async chat(body, { signal, idempotencyKey } = {}) {
      // openapi-fetch's reading of the answer drops its always-null fields; the API sends them.
      return unwrap<unknown>(
        await api.POST("/v1/chat/completions", {
          body,
          headers: idempotencyKey ? { "idempotency-key": idempotencyKey } : undefined,
          signal,
        }),
      ) as ChatCompletion;
    },
    async balance({ signal } = {}) {
      return unwrap(await api.GET("/v1/balance", { signal }));
    },
    async models({ signal } = {}) {
      return unwrap(await api.GET("/v1/models", { signal }));
    },
  };
}
