import {
  amountPaid,
  createClient,
  errorFromResponse,
  PolyforgeError,
  SpendLedger,
} from "@polyforge/client";
import { privateKeyToAccount } from "viem/accounts";
import {
  ApiError,
  type ChatCompletionJson,
  type GenerationJson,
  type ModelJson,
  type PaymentJson,
  type PolyforgeApi,
} from "./api.js";
import { type Config, unitsToDollars } from "./config.js";

/**
 * Polyforge's HTTP API, the only thing this package talks to, through @polyforge/client: with
 * an API key, or with no key and a wallet that pays each call through x402 (POST /v1/generate,
 * /v1/chat/completions, /v1/audio/speech) within the client's spending caps.
 */

type Json = Record<string, unknown>;

const $ = (units: unknown) => `$${unitsToDollars(BigInt(String(units)))}`;

/**
 * The client's refusals under this package's codes: its spend caps are the env's caps, named
 * after the variables a user sets.
 */
function fromClient(err: unknown, base: string, paying: boolean): unknown {
  if (err instanceof ApiError) return err;
  if (err instanceof PolyforgeError) {
    const d = err.details;
    if (err.code === "spend_cap_per_call") {
      return new ApiError(
        "max_per_call_exceeded",
        `This call asks ${$(d.amount)} USDC, over POLYFORGE_MAX_PER_CALL (${$(d.maxPerCall)}); nothing was paid.`,
      );
    }
    if (err.code === "spend_cap_per_day") {
      return new ApiError(
        "max_per_day_exceeded",
        `This call asks ${$(d.amount)} USDC and ${$(d.spentToday)} was paid today (UTC): over POLYFORGE_MAX_PER_DAY (${$(d.maxPerDay)}); nothing was paid.`,
      );
    }
    return new ApiError(String(err.code), err.message, err.status || undefined);
  }
  // fetch fails with a TypeError when it cannot connect; anything else broke inside x402.
  if (err instanceof TypeError) {
    return new ApiError(
      "api_unreachable",
      `Polyforge at ${base} cannot be reached: ${err.cause instanceof Error ? err.cause.message : err.message}`,
    );
  }
  if (err instanceof Error && (err.name === "AbortError" || err.name === "TimeoutError")) {
    return new ApiError("aborted", "The call was stopped before Polyforge answered.");
  }
  // Only a wallet's calls sign anything: with a key, a failure here is not a payment's.
  return paying
    ? new ApiError("payment_failed", `The x402 payment failed: ${(err as Error).message}`)
    : new ApiError(
        "unexpected_response",
        `The call to Polyforge failed: ${(err as Error).message}`,
      );
}

export function httpApi(config: Config): PolyforgeApi {
  const base = config.apiUrl;
  const paying = config.mode === "wallet";
  const ledger = paying ? new SpendLedger() : undefined;
  const client = createClient({
    baseUrl: base,
    ...(config.mode === "key"
      ? { apiKey: config.apiKey }
      : {
          wallet: privateKeyToAccount(config.walletKey),
          networks: [config.network],
          maxPerCall: config.maxPerCall,
          maxPerDay: config.maxPerDay,
          ledger,
        }),
  });
  /** Each paid generation's access token (gat_…), the one credential that reads it. */
  const tokens = new Map<string, string>();

  /** One call: its answer, or its refusal as an ApiError. */
  async function call<T>(
    send: () => Promise<{ data?: unknown; error?: unknown; response: Response }>,
  ): Promise<{ body: T; response: Response }> {
    let result: Awaited<ReturnType<typeof send>>;
    try {
      result = await send();
    } catch (err) {
      throw fromClient(err, base, paying);
    }
    if (!result.response.ok || result.data === undefined) {
      throw fromClient(errorFromResponse(result.response, result.error), base, paying);
    }
    return { body: result.data as T, response: result.response };
  }

  /** The API's receipt of a paid call, with the USDC the wallet signed for it. */
  const receipt = (payment: unknown, response: Response): PaymentJson | undefined => {
    const paid = amountPaid(response);
    return paid === undefined
      ? undefined
      : { usdc: unitsToDollars(paid), ...((payment as Json | undefined) ?? {}) };
  };

  return {
    mode: config.mode,
    ...(ledger &&
      config.mode === "wallet" && {
        spending: () => {
          const spent = ledger.today();
          return {
            day: new Date().toISOString().slice(0, 10),
            spent,
            maxPerCall: config.maxPerCall,
            maxPerDay: config.maxPerDay,
          };
        },
      }),
    generate: async (body) => {
      const { body: answer, response } = await call<{
        generationId?: string;
        cost: number;
        accessToken?: string;
        status?: string;
        payment?: Json;
        message?: string;
      }>(() => client.api.POST("/v1/generate", { body: body as never }));
      if (!answer.generationId) {
        // The payment was broadcast but not confirmed: its credits wait on the wallet's account.
        throw new ApiError(
          answer.status ?? "payment_pending",
          answer.message ?? "The payment is not confirmed yet.",
        );
      }
      if (answer.accessToken) tokens.set(answer.generationId, answer.accessToken);
      const payment = receipt(answer.payment, response);
      return {
        generationId: answer.generationId,
        cost: answer.cost,
        ...(payment && { payment }),
      };
    },
    status: async (ids) => {
      type Status = { generations: Record<string, GenerationJson>; notFound: string[] };
      const read = async (list: string[], token?: string) =>
        (
          await call<Status>(() =>
            client.api.GET("/v1/generate/status", {
              params: { query: { ids: list.join(",") } },
              ...(token && { headers: { authorization: `Bearer ${token}` } }),
            }),
          )
        ).body;
      if (config.mode === "key") return read(ids);
      // A wallet reads each generation it paid for with that generation's own token.
      const found: Status = { generations: {}, notFound: [] };
      for (const id of ids) {
        const token = tokens.get(id);
        if (!token) {
          found.notFound.push(id);
          continue;
        }
        const answer = await read([id], token);
        Object.assign(found.generations, answer.generations);
        found.notFound.push(...answer.notFound);
      }
      return found;
    },
    models: async () =>
      (await call<{ data: ModelJson[] }>(() => client.api.GET("/v1/models"))).body.data,
    chat: async (body, signal) => {
      const { body: reply, response } = await call<ChatCompletionJson>(() =>
        client.api.POST("/v1/chat/completions", {
          body: body as never,
          ...(signal && { signal }),
        }),
      );
      const payment = receipt(reply.payment, response);
      return payment ? { ...reply, payment } : reply;
    },
    speech: async (body, signal) => {
      const { body: audio, response } = await call<ArrayBuffer>(() =>
        client.api.POST("/v1/audio/speech", {
          body: body as never,
          parseAs: "arrayBuffer",
          ...(signal && { signal }),
        }),
      );
      const payment = receipt(undefined, response);
      return {
        audioBase64: Buffer.from(audio).toString("base64"),
        contentType: response.headers.get("content-type") ?? "application/octet-stream",
        charged: Number(response.headers.get("x-credits-charged") ?? 0),
        upstream: response.headers.get("x-upstream"),
        failover: response.headers.get("x-failover") === "true",
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
      return (await call<Json>(() => client.api.GET("/v1/balance"))).body;
    },
  };
}
