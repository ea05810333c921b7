import type { Request, Response } from "express";
import { USDC_UNITS_PER_CREDIT } from "../../chain/networks.js";
import type { AppContext, ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { countOnlyWork, setRateLimitHeaders } from "../../http/rate-limit.js";
import { checkUrl } from "../../lib/safe-fetch.js";
import {
  acceptPayment,
  type PaymentOutcome,
  type PriceOnNetwork,
  receiptJson,
  respondPending,
} from "../payments/accept.js";
import { linkGeneration, type Payment } from "../payments/service.js";
import type { RateLimitBucket } from "../ratelimits/limits.js";
import { enforceRateLimit } from "../ratelimits/service.js";
import { rehostReferenceImages } from "../uploads/service.js";
import { accessTokenFor } from "./access-tokens.js";
import { quoteRequest } from "./compose.js";
import { assertInFlightCapacity } from "./in-flight.js";
import type { GenerateRequest } from "./request.js";
import { type GenerationScope, submitGeneration, submitGenerationBatch } from "./service.js";

export interface PaidGeneration {
  generationId: string;
  cost: bigint;
  /** Reads this generation (status, events) without an API key. */
  accessToken: string;
}

export interface PaidGenerations {
  /** Set when the generations were submitted as one batch. */
  batchId: string | null;
  generations: PaidGeneration[];
}

/**
 * Generations paid per call with x402, for a caller with no API key. The body was validated by
 * the route; here it is quoted on every network that takes payments (a request that quotes
 * nowhere fails with its own 4xx, before any 402), and its URLs are checked by the SSRF guard.
 * The 402 asks for exactly the quote, at $0.01 a credit. Once paid, the credits are minted to
 * the paying wallet's account, held and the jobs queued in the same transaction that records
 * the payment; a failed result refunds to that account like any other. The wallet's rate limit
 * (its account's tier, in `bucket`) and in-flight cap are checked once the payment is verified
 * and before it settles, so a refused call costs nothing.
 */
export async function submitPaidGenerations(
  ctx: AppContext,
  req: Request,
  res: Response,
  requests: GenerateRequest[],
  bucket: RateLimitBucket,
  options: { asBatch?: boolean } = {},
): Promise<PaymentOutcome<PaidGenerations>> {
  const channels = ctx.config.channels;
  const ownUploads = `${ctx.config.http.publicUrl}/v1/uploads/`;
  for (const request of requests) {
    if (request.reservationId) {
      throw new AppError(
        "invalid_request",
        "A reservation belongs to an account: send its API key to draw from it.",
        { field: "reservationId" },
      );
    }
    if (request.referenceImageUrls.some((url) => url.startsWith(ownUploads))) {
      throw new AppError(
        "invalid_reference_image",
        "Uploads belong to an account: send its API key to use them, or give the image's own URL.",
        { field: "referenceImageUrls" },
      );
    }
  }
  const prices: PriceOnNetwork[] = [];
  let refusal: unknown;
  for (const network of ctx.payments.networks()) {
    try {
      // The payer is unknown until the payment names the wallet: every pass fee is quoted (a
      // creator paying per call for their own pass keeps the fee as credits on their account).
      let credits = 0n;
      for (const r of requests) {
        credits += (await quoteRequest(ctx, r, { network, userId: undefined }, channels)).total;
      }
      prices.push({
        network,
        amount: credits * USDC_UNITS_PER_CREDIT,
        credits,
        purpose: "generation",
      });
    } catch (err) {
      refusal ??= err;
    }
  }
  if (prices.length === 0 && refusal) throw refusal;
  for (const request of requests) {
    for (const url of [...request.referenceImageUrls, request.webhookUrl ?? []].flat()) {
      await checkUrl(url, { allowHosts: ctx.config.ssrfAllowHosts });
    }
  }
  const models = [...new Set(requests.flatMap((r) => r.models))].join(", ");
  const credits = prices[0]?.credits ?? 0n;
  const description = `${requests.length > 1 ? `${requests.length} generations` : "a generation"} with ${models}: ${credits} credits`;
  // Reference images are fetched once the payment is verified and before it settles, so a bad
  // one costs nothing; the generations then use our copies.
  let rehosted = requests;
  const prepare = async (scope: GenerationScope) => {
    const subject = { kind: "account" as const, ...scope };
    const decision = await enforceRateLimit(ctx, subject, bucket);
    setRateLimitHeaders(res, decision);
    countOnlyWork(ctx, res, decision);
    await assertInFlightCapacity(ctx, scope, requests.length);
    rehosted = await Promise.all(
      requests.map(async (request) => {
        if (request.referenceImageUrls.length === 0) return request;
        const ids = await rehostReferenceImages(
          ctx,
          ctx.generations.storage,
          scope,
          request.referenceImageUrls,
        );
        return { ...request, referenceImageUrls: ids.map((id) => `${ownUploads}${id}`) };
      }),
    );
  };
  const apply = async (tx: ServiceContext, payment: Payment) => {
    const scope = { accountId: payment.accountId, network: payment.network };
    const storage = ctx.generations.storage;
    let batchId: string | null = null;
    const made: Array<{ generationId: string; cost: bigint }> = [];
    if (options.asBatch) {
      const batch = await submitGenerationBatch(tx, channels, scope, rehosted, { storage });
      batchId = batch.batchId;
      made.push(...batch.generations);
    } else {
      for (const request of rehosted) {
        made.push(await submitGeneration(tx, channels, scope, request, { storage }));
      }
    }
    const first = made[0];
    if (first) await linkGeneration(tx, payment.id, first.generationId);
    return {
      batchId,
      generations: made.map(({ generationId, cost }) => ({
        generationId,
        cost,
        accessToken: accessTokenFor(ctx.config, generationId),
      })),
    };
  };
  return acceptPayment(ctx, req, res, prices, description, apply, prepare);
}

/**
 * One paid generation, for the doors that make one: its generation and the fields every paid
 * answer adds (the access token and the receipt). Undefined when the settlement is pending:
 * the 202 that says so has been sent.
 */
export async function submitPaidGeneration(
  ctx: AppContext,
  req: Request,
  res: Response,
  request: GenerateRequest,
): Promise<{ generation: PaidGeneration; paid: Record<string, unknown> } | undefined> {
  const outcome = await submitPaidGenerations(ctx, req, res, [request], "generate");
  if (outcome.status === "pending") {
    respondPending(res, outcome.payment);
    return undefined;
  }
  const [generation] = outcome.result.generations;
  if (!generation) throw new Error("a paid generation was not created");
  return {
    generation,
    paid: { accessToken: generation.accessToken, payment: receiptJson(outcome.payment) },
  };
}
