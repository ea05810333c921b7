import type { AppContext, ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { formatCredits } from "../../lib/credits.js";
import type { Network } from "../../lib/network.js";
import { checkUrl } from "../../lib/safe-fetch.js";
import type { NetworkScope } from "../accounts/caller.js";
import {
  acceptPayment,
  offeredPrices,
  type PaidRequest,
  type PaymentOutcome,
} from "../payments/accept.js";
import { linkGeneration, type Payment } from "../payments/service.js";
import type { RateLimitBucket } from "../ratelimits/limits.js";
import { enforceRateLimit, type RateLimitDecision } from "../ratelimits/service.js";
import type { Channel } from "../routing/channels.js";
import { rehostReferenceImages } from "../uploads/service.js";
import { accessTokenFor } from "./access-tokens.js";
import { type Composition, composeRequest } from "./compose.js";
import { assertInFlightCapacity } from "./in-flight.js";
import { type GenerateRequest, quote } from "./request.js";
import {
  insertPreparedBatch,
  insertPreparedGeneration,
  type PreparedGeneration,
} from "./submit.js";

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

export interface PaidGenerationOptions {
  /** The rate-limit bucket the paying wallet's account is counted in. */
  bucket: RateLimitBucket;
  /** Submit the requests as one batch, under one hold. */
  asBatch?: boolean;
  /** The caller runs the generations itself (see SubmitOptions); not with asBatch. */
  runInline?: boolean;
  /**
   * Told the wallet's rate-limit count once it is taken (a refusal throws 429 instead), before
   * anything else can fail: the transport shows it and gives it back if the call then fails.
   */
  onRateLimitCounted?: (decision: RateLimitDecision) => void;
}

/**
 * Generations paid per call with x402, for a caller with no API key. Everything that reads the
 * network or prices runs ONCE and outside the transaction that records the payment:
 *   1. validate; compose and quote on every network that takes payments (a request that quotes
 *      nowhere fails with its own 4xx, before any 402); SSRF-check every URL it gives;
 *   2. the 402 asks for exactly the quote, at $0.01 a credit;
 *   3. once the payment is verified and before it settles: the wallet's rate limit (its
 *      account's tier, in `bucket`) and in-flight cap, and the reference images re-hosted, so
 *      a refused call or a bad image costs nothing;
 *   4. settled: in the transaction that records the payment, the credits are minted to the
 *      paying wallet's account, and the PREPARED generations only inserted, held and queued.
 * A failed result refunds to that account like any other.
 */
export async function submitPaidGenerations(
  ctx: AppContext,
  paid: PaidRequest,
  requests: GenerateRequest[],
  options: PaidGenerationOptions,
): Promise<PaymentOutcome<PaidGenerations>> {
  const channels = ctx.channels;
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
  // Each network's compositions, kept to price the generations for the payer once known.
  const composed = new Map<Network, Composition[]>();
  const prices = await offeredPrices(ctx.payments.networks(), async (network) => {
    // The payer is unknown until the payment names the wallet: every pass fee is quoted (a
    // creator paying per call for their own pass keeps the fee as credits on their account).
    const compositions: Composition[] = [];
    let credits = 0n;
    for (const r of requests) {
      const composition = await composeRequest(ctx, r, { network, userId: undefined });
      credits += quote(r, network, channels, composition).total;
      compositions.push(composition);
    }
    composed.set(network, compositions);
    // A ledger unit is one USDC base unit: the price is the quote.
    return { network, amount: credits, credits, purpose: "generation" };
  });
  for (const request of requests) {
    for (const url of [...request.referenceImageUrls, request.webhookUrl ?? []].flat()) {
      await checkUrl(url, { allowHosts: ctx.config.ssrfAllowHosts });
    }
  }
  const models = [...new Set(requests.flatMap((r) => r.models))].join(", ");
  const credits = prices[0]?.credits ?? 0n;
  const description = `${requests.length > 1 ? `${requests.length} generations` : "a generation"} with ${models}: ${formatCredits(credits)} credits`;

  let prepared: { scope: NetworkScope; generations: PreparedGeneration[] } | undefined;
  const prepare = async (scope: NetworkScope) => {
    const subject = { kind: "account" as const, ...scope };
    const decision = await enforceRateLimit(ctx, subject, options.bucket);
    if (decision) options.onRateLimitCounted?.(decision);
    await assertInFlightCapacity(ctx, scope, requests.length);
    const compositions = composed.get(scope.network);
    if (!compositions) throw new Error(`no quote on ${scope.network}, the payment's network`);
    const generations = await Promise.all(
      requests.map(async (request, i) => {
        // Reference images are fetched once the payment is verified and before it settles, so
        // a bad one costs nothing; the generation then uses our copies.
        const referenceImages = await rehostReferenceImages(ctx, scope, request.referenceImageUrls);
        return {
          request: {
            ...request,
            referenceImageUrls: referenceImages.map((id) => `${ownUploads}${id}`),
          },
          priced: quoteForPayer(request, scope, channels, compositions[i] as Composition),
          referenceImages,
        };
      }),
    );
    prepared = { scope, generations };
  };
  const apply = async (tx: ServiceContext, payment: Payment) => {
    const scope = { accountId: payment.accountId, network: payment.network };
    // Invariant: what was prepared is for this payment's account and network (prepare runs for
    // the verified payment, before it is claimed), so only database work is left.
    if (prepared?.scope.accountId !== scope.accountId || prepared.scope.network !== scope.network) {
      throw new Error(`payment ${payment.id} was not prepared for`);
    }
    let batchId: string | null = null;
    const made: Array<{ generationId: string; cost: bigint }> = [];
    if (options.asBatch) {
      const batch = await insertPreparedBatch(tx, scope, prepared.generations, {});
      batchId = batch.batchId;
      made.push(...batch.generations);
    } else {
      for (const generation of prepared.generations) {
        made.push(
          await insertPreparedGeneration(tx, scope, generation, {
            runInline: options.runInline ?? false,
          }),
        );
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
  return acceptPayment(ctx, { ...paid, prices, description }, apply, prepare);
}

/**
 * The payer's price for a request, from the composition quoted before they were known: their
 * own passes are free to them (as passesForUse has it), so it never exceeds what they paid. Pure:
 * no second read of passes or templates between the price asked and the hold placed.
 */
function quoteForPayer(
  request: GenerateRequest,
  scope: NetworkScope,
  channels: readonly Channel[],
  composition: Composition,
) {
  const passes = composition.passes.map((p) =>
    p.creatorId === scope.accountId ? { ...p, fee: 0n } : p,
  );
  return quote(request, scope.network, channels, { ...composition, passes });
}
