import { Router } from "express";
import type { AppContext } from "../../context.js";
import { notFound } from "../../errors.js";
import { keyScopeOf } from "../../http/auth.js";
import { pageOf } from "../../http/cursor.js";
import { mountOn } from "../../http/mount.js";
import { payOverHttp, respondPending } from "../../http/x402.js";
import { creditsToJson } from "../../lib/credits.js";
import { getBalance } from "../ledger/service.js";
import { acceptPayment, receiptJson } from "./accept.js";
import { paymentContracts } from "./contract.js";
import { keyForPayingWallet, packPrices } from "./packs.js";
import { findPaymentByNonce, listPayments, paymentJson } from "./service.js";

export function paymentRoutes(ctx: AppContext): Router {
  const router = Router();
  const mount = mountOn(router, ctx);

  /**
   * Credit packs, paid in USDC on the caller's network: the API key's, or with no key any
   * network this deployment takes payments on (the credits and a new key go to the wallet).
   */
  mount(paymentContracts.buyCreditPack, async ({ ctx, caller, params: { pack }, req, res }) => {
    const keyScope = caller ? keyScopeOf(caller) : undefined;
    const { prices, description } = packPrices(
      pack,
      keyScope ? [keyScope.network] : ctx.payments.networks(),
      keyScope?.accountId,
    );
    const outcome = await payOverHttp(ctx, req, res, (paid) =>
      acceptPayment(ctx, { ...paid, prices, description }, async () => undefined),
    );
    const { payment } = outcome;
    if (outcome.status === "pending") {
      respondPending(res, payment);
      return undefined;
    }
    const apiKey = keyScope ? undefined : await keyForPayingWallet(ctx, payment);
    const balance = await getBalance(ctx, payment.accountId, payment.network);
    return {
      status: 201,
      body: {
        pack,
        credits: creditsToJson(payment.credits),
        creditBalance: creditsToJson(balance.creditBalance),
        membershipTier: balance.membershipTier,
        accountId: payment.accountId,
        payment: receiptJson(payment),
        ...(apiKey !== undefined && { apiKey }),
      },
    };
  });

  mount(paymentContracts.listPayments, async ({ ctx, caller, query }) => {
    const page = await pageOf(
      query.limit,
      (limit) => listPayments(ctx, keyScopeOf(caller), { limit, before: query.cursor }),
      (last) => last.id,
    );
    return { status: 200, body: { data: page.data.map(paymentJson), nextCursor: page.nextCursor } };
  });

  // No credential: see findPaymentByNonce for why the nonce alone is enough.
  mount(
    paymentContracts.getPaymentByNonce,
    async ({ ctx, params }) => {
      const payment = await findPaymentByNonce(ctx, params.nonce);
      if (!payment) throw notFound("Payment");
      return { status: 200, body: paymentJson(payment) };
    },
    { notFound: "Payment" },
  );

  return router;
}
