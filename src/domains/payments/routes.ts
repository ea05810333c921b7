import { Router } from "express";
import { z } from "zod";
import type { AppContext } from "../../context.js";
import { notFound } from "../../errors.js";
import { authenticate, authenticateUnlessPaying, keyScopeOf } from "../../http/auth.js";
import { pathParams } from "../../http/params.js";
import { rateLimit } from "../../http/rate-limit.js";
import { payOverHttp, respondPending } from "../../http/x402.js";
import { creditsToJson } from "../../lib/credits.js";
import { type PackId, packs } from "../ledger/packs.js";
import { getBalance } from "../ledger/service.js";
import { acceptPayment, receiptJson } from "./accept.js";
import { keyForPayingWallet, packPrices } from "./packs.js";
import { findPaymentByNonce, listPayments, paymentJson } from "./service.js";

export function paymentRoutes(ctx: AppContext): Router {
  const router = Router();

  /**
   * Credit packs, paid in USDC on the caller's network: the API key's, or with no key any
   * network this deployment takes payments on (the credits and a new key go to the wallet).
   */
  router.post("/v1/credits/packs/:pack", authenticateUnlessPaying(ctx), async (req, res) => {
    const { pack } = packParams.parse(req.params);
    const keyScope = req.caller ? keyScopeOf(req) : undefined;
    const { prices, description } = packPrices(
      pack,
      keyScope ? [keyScope.network] : ctx.payments.networks(),
      keyScope?.accountId,
    );
    const outcome = await payOverHttp(ctx, req, res, (paid) =>
      acceptPayment(ctx, { ...paid, prices, description }, async () => undefined),
    );
    const { payment } = outcome;
    if (outcome.status === "pending") return respondPending(res, payment);
    const apiKey = keyScope ? undefined : await keyForPayingWallet(ctx, payment);
    const balance = await getBalance(ctx, payment.accountId, payment.network);
    res.status(201).json({
      pack,
      credits: creditsToJson(payment.credits),
      creditBalance: creditsToJson(balance.creditBalance),
      membershipTier: balance.membershipTier,
      accountId: payment.accountId,
      payment: receiptJson(payment),
      ...(apiKey !== undefined && { apiKey }),
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

  // No credential: see findPaymentByNonce for why the nonce alone is enough.
  router.get("/v1/payments/by-nonce/:nonce", rateLimit(ctx, "poll"), async (req, res) => {
    const { nonce } = pathParams(nonceParams, req.params, "Payment");
    const payment = await findPaymentByNonce(ctx, nonce);
    if (!payment) throw notFound("Payment");
    res.json(paymentJson(payment));
  });

  return router;
}
