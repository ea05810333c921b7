import { ExactEvmScheme } from "@x402/evm/exact/client";
import { wrapFetchWithPayment, x402Client } from "@x402/fetch";
import { privateKeyToAccount } from "viem/accounts";
import type { Config } from "./config.js";
import { type SpendGuard, spendGuard } from "./spend.js";

/**
 * Polyforge's HTTP API, the only thing this package talks to: with an API key, or with no key
 * and a wallet that pays each call through x402 (POST /v1/generate, /v1/chat/completions,
 * /v1/audio/speech), within the spending caps.
 */

type Json = Record<string, unknown>;

/** A result of a generation as GET /v1/generate/status shows it. */
export interface ResultJson {
  model: string;
  status: string;
  imageUrl?: string | null;
  videoUrl?: string | null;
  audioUrl?: string | null;
  fps?: number | null;
  progress?: number | null;
  cost: number;
  routing?: unknown;
  error?: unknown;
}

/** A generation as GET /v1/generate/status shows it. */
export interface GenerationJson {
  generationId: string;
  status: "pending" | "processing" | "completed" | "failed";
  cost: { quoted: number; charged: number; refunded: number };
  results: ResultJson[];
}

/** A model as GET /v1/models lists it (the tools read these few fields). */
export interface ModelJson {
  id: string;
  type: string;
  aliases?: string[];
  kind?: string;
  capabilities?: { voices?: string[] };
  [field: string]: unknown;
}

/** What a wallet paid for one call: the API's receipt, with the USDC amount signed. */
export interface PaymentJson {
  usdc: string;
  [field: string]: unknown;
}

export interface ChatCompletionJson {
  model: string;
  choices: Array<{ message: { content: string | null }; finish_reason: string | null }>;
  usage: { prompt_tokens: number; completion_tokens: number };
  cost: { quoted: number; charged: number; refunded: number };
  routing: Json;
  payment?: Json;
}

export interface SpeechJson {
  audioBase64: string;
  contentType: string;
  /** Credits. */
  charged: number;
  upstream: string | null;
  failover: boolean;
}

/** An API refusal (or a refusal of ours, such as a spending cap), with a stable code. */
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

export interface PolyforgeApi {
  mode: Config["mode"];
  generate(body: Json): Promise<{ generationId: string; cost: number; payment?: PaymentJson }>;
  status(
    ids: string[],
  ): Promise<{ generations: Record<string, GenerationJson>; notFound: string[] }>;
  models(): Promise<ModelJson[]>;
  speech(body: Json, signal?: AbortSignal): Promise<SpeechJson & { payment?: PaymentJson }>;
  chat(body: Json, signal?: AbortSignal): Promise<ChatCompletionJson>;
  balance(): Promise<Json>;
  /** With a wallet: what this process has paid today and the caps. */
  spending?: SpendGuard;
}

const parse = (text: string): unknown => {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
};

/** A refusal's body as the ApiError carrying its code. */
function refusal(status: number, text: string): ApiError {
  const error = (parse(text) as { error?: { code?: string; message?: string } } | undefined)?.error;
  return new ApiError(
    error?.code ?? "http_error",
    error?.message ?? `Polyforge answered ${status}.`,
    status,
  );
}

type Fetch = (url: string, init: RequestInit) => Promise<Response>;

/**
 * fetch that pays a 402 from the wallet, one x402 client per call so that the cap check of
 * one call cannot be mistaken for another's. The amount is checked against both caps before
 * anything is signed; a payment the API then refuses (a second 402) is not counted.
 */
function payingFetch(config: Extract<Config, { mode: "wallet" }>, guard: SpendGuard) {
  const account = privateKeyToAccount(config.walletKey);
  const scheme = new ExactEvmScheme(account);
  return async (url: string, init: RequestInit): Promise<{ res: Response; paid?: bigint }> => {
    let refused: ApiError | undefined;
    let reserved: bigint | undefined;
    const client = x402Client.fromConfig({
      schemes: [{ network: config.network, client: scheme }],
      // Our caps replace x402's default $1 cap; the asset stays limited to x402's known USDC.
      spendControls: { maxAmountPerPayment: false },
    });
    client.onBeforePaymentCreation(async ({ selectedRequirements }) => {
      const amount = BigInt(selectedRequirements.amount);
      const cap = guard.reserve(amount);
      if (cap) {
        refused = new ApiError(cap.code, cap.message);
        return { abort: true, reason: cap.message };
      }
      reserved = amount;
      return undefined;
    });
    try {
      const res = await wrapFetchWithPayment(fetch, client)(url, init);
      if (res.status === 402 && reserved !== undefined) {
        guard.release(reserved);
        reserved = undefined;
      }
      return reserved === undefined ? { res } : { res, paid: reserved };
    } catch (err) {
      if (refused) throw refused;
      throw new ApiError("payment_failed", `The x402 payment failed: ${(err as Error).message}`);
    }
  };
}

export function httpApi(config: Config): PolyforgeApi {
  const base = config.apiUrl;
  const guard = config.mode === "wallet" ? spendGuard(config.maxPerCall, config.maxPerDay) : null;
  const pay = config.mode === "wallet" && guard ? payingFetch(config, guard) : null;
  /** Each paid generation's access token (gat_…), the one credential that reads it. */
  const tokens = new Map<string, string>();

  async function send(
    method: string,
    path: string,
    options: { body?: unknown; signal?: AbortSignal; token?: string; paid?: boolean } = {},
  ): Promise<{ res: Response; paid?: bigint }> {
    const token = options.token ?? (config.mode === "key" ? config.apiKey : undefined);
    const init: RequestInit = {
      method,
      signal: options.signal ?? null,
      headers: {
        ...(token && { authorization: `Bearer ${token}` }),
        ...(options.body !== undefined && { "content-type": "application/json" }),
      },
      ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
    };
    try {
      if (options.paid && pay) return await pay(`${base}${path}`, init);
      return { res: await (fetch as Fetch)(`${base}${path}`, init) };
    } catch (err) {
      if (err instanceof ApiError) throw err;
      throw new ApiError(
        "api_unreachable",
        `Polyforge at ${base} cannot be reached: ${(err as Error).message}`,
      );
    }
  }

  async function call<T>(
    method: string,
    path: string,
    options: Parameters<typeof send>[2] = {},
  ): Promise<{ body: T; paid?: bigint }> {
    const { res, paid } = await send(method, path, options);
    const text = await res.text();
    if (!res.ok) throw refusal(res.status, text);
    return { body: parse(text) as T, ...(paid !== undefined && { paid }) };
  }

  const receipt = (payment: unknown, paid: bigint | undefined): PaymentJson | undefined =>
    paid === undefined || !guard
      ? undefined
      : { usdc: guard.dollars(paid), ...((payment as Json | undefined) ?? {}) };

  return {
    mode: config.mode,
    ...(guard && { spending: guard }),
    generate: async (body) => {
      const { body: answer, paid } = await call<{
        generationId?: string;
        cost: number;
        accessToken?: string;
        status?: string;
        payment?: Json;
        message?: string;
      }>("POST", "/v1/generate", { body, paid: true });
      if (!answer.generationId) {
        // The payment was broadcast but not confirmed: its credits wait on the wallet's account.
        throw new ApiError(
          answer.status ?? "payment_pending",
          answer.message ?? "The payment is not confirmed yet.",
        );
      }
      if (answer.accessToken) tokens.set(answer.generationId, answer.accessToken);
      const payment = receipt(answer.payment, paid);
      return {
        generationId: answer.generationId,
        cost: answer.cost,
        ...(payment && { payment }),
      };
    },
    status: async (ids) => {
      const query = (list: string[]) =>
        `/v1/generate/status?ids=${list.map(encodeURIComponent).join(",")}`;
      type Status = { generations: Record<string, GenerationJson>; notFound: string[] };
      if (config.mode === "key") return (await call<Status>("GET", query(ids))).body;
      // A wallet reads each generation it paid for with that generation's own token.
      const found: Status = { generations: {}, notFound: [] };
      for (const id of ids) {
        const token = tokens.get(id);
        if (!token) {
          found.notFound.push(id);
          continue;
        }
        const { body } = await call<Status>("GET", query([id]), { token });
        Object.assign(found.generations, body.generations);
        found.notFound.push(...body.notFound);
      }
      return found;
    },
    models: async () => (await call<{ data: ModelJson[] }>("GET", "/v1/models")).body.data,
    chat: async (body, signal) => {
      const { body: reply, paid } = await call<ChatCompletionJson>("POST", "/v1/chat/completions", {
        body,
        ...(signal && { signal }),
        paid: true,
      });
      const payment = receipt(reply.payment, paid);
      return payment ? { ...reply, payment } : reply;
    },
    speech: async (body, signal) => {
      const { res, paid } = await send("POST", "/v1/audio/speech", {
        body,
        ...(signal && { signal }),
        paid: true,
      });
      if (!res.ok) throw refusal(res.status, await res.text());
      const payment = receipt(undefined, paid);
      return {
        audioBase64: Buffer.from(await res.arrayBuffer()).toString("base64"),
        contentType: res.headers.get("content-type") ?? "application/octet-stream",
        charged: Number(res.headers.get("x-credits-charged") ?? 0),
        upstream: res.headers.get("x-upstream"),
        failover: res.headers.get("x-failover") === "true",
        ...(payment && { payment }),
      };
    },
    balance: async () => {
      if (config.mode === "wallet") {
        throw new ApiError(
          "api_key_required",
          "The balance of credits needs POLYFORGE_API_KEY; with POLYFORGE_WALLET_KEY each call is paid in USDC as it is made.",
        );
      }
      return (await call<Json>("GET", "/v1/balance")).body;
    },
  };
}
