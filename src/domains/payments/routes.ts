import { Router } from "express";
import { z } from "zod";
import { USDC_UNITS_PER_CREDIT } from "../../chain/networks.js";
import type { AppContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { authenticate, authenticateUnlessPaying, keyScopeOf } from "../../http/auth.js";
import { creditsToJson } from "../../lib/credits.js";
import { createApiKey } from "../keys/service.js";
import { type PackId, packs } from "../ledger/packs.js";
import { getBalance } from "../ledger/service.js";
import { acceptPayment, type PriceOnNetwork, receiptJson, respondPending } from "./accept.js";
import { listPayments, paymentJson } from "./service.js";

const packParams = z.object({
  pack: z.enum(Object.keys(packs) as [PackId, ...PackId[]], {
    error: `Unknown pack; the packs are ${Object.keys(packs).join(", ")}.`,
  }),
});

export const paymentsQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z
      .string()
      .regex(/^pay_[0-9a-z]{26}$/, "not a cursor")
      .optional(),
  })
  .strict();

/** USD cents → USDC base units (1 cent = 10,000 units, the price of one credit). */
const centsToUsdc = (cents: bigint) => cents * USDC_UNITS_PER_CREDIT;

export function paymentRoutes(ctx: AppContext): Router {
  const router = Router();

  /**
   * Credit packs, paid in USDC on the caller's network: the API key's, or with no key any
   * network this deployment takes payments on (the credits and a new key go to the wallet).
   */
  router.post("/v1/credits/packs/:pack", authenticateUnlessPaying(ctx), async (req, res) => {
    const { pack } = packParams.parse(req.params);
    const offer = packs[pack];
    const keyScope = req.caller ? keyScopeOf(req) : undefined;
    const networks = keyScope ? [keyScope.network] : ctx.payments.networks();
    const prices: PriceOnNetwork[] = networks.map((network) => ({
      network,
      amount: centsToUsdc(offer.priceUsdCents),
      credits: offer.credits,
      purpose: "pack",
      pack,
      ...(keyScope && { accountId: keyScope.accountId }),
    }));
    if (prices.length === 0) ctx.payments.networkConfig("test");
    const description = `the ${pack} pack: ${offer.credits} credits for $${offer.priceUsdCents / 100n}`;
    const outcome = await acceptPayment(ctx, req, res, prices, description, async () => undefined);
    const { payment } = outcome;
    if (outcome.status === "pending") return respondPending(res, payment);
    // A wallet with no key gets one for its account, shown once, so it can spend the credits.
    let apiKey: string | null = null;
    if (!keyScope) {
      apiKey = await createApiKey(
        ctx,
        { accountId: payment.accountId, network: payment.network },
        { name: `${pack} pack`, network: payment.network },
      ).then(
        (created) => created.key,
        (err: unknown) => {
          // The payment stands whatever happens here; a wallet sign-in can make a key later.
          if (!(err instanceof AppError && err.code === "api_key_limit_reached")) {
            req.log.error(
              { err, accountId: payment.accountId },
              "could not make a key for a paid pack",
            );
          }
          return null;
        },
      );
    }
    const balance = await getBalance(ctx, payment.accountId, payment.network);
    res.status(201).json({
      pack,
      credits: creditsToJson(payment.credits),
      creditBalance: creditsToJson(balance.creditBalance),
      membershipTier: balance.membershipTier,
      accountId: payment.accountId,
      payment: receiptJson(payment),
      ...(!keyScope && { apiKey }),
    });
  });

  router.get("/v1/payments", authenticate(ctx), async (req, res) => {
    const query = paymentsQuery.parse(req.query);
    const page = await listPayments(ctx, keyScopeOf(req), {
      limit: query.limit + 1,
      before: query.cursor,
    });
    const data = page.slice(0, query.limit);
    res.json({
      data: data.map(paymentJson),
      nextCursor: page.length > query.limit ? (data.at(-1)?.id ?? null) : null,
    });
  });

  return router;
}
