import type { AppContext } from "../../context.js";
import { formatCredits } from "../../lib/credits.js";
import type { NetworkScope } from "../accounts/caller.js";
import type { Hold } from "../ledger/service.js";
import { placeHold } from "../ledger/service.js";
import {
  acceptPayment,
  offeredPrices,
  type PaidRequest,
  type PaymentOutcome,
} from "../payments/accept.js";
import type { RateLimitDecision } from "../ratelimits/service.js";
import { enforceRateLimit } from "../ratelimits/service.js";
import { type ChatPlan, chatHoldInput, checkChatRouting } from "./service.js";

/**
 * A chat paid per call with x402 (issue 20, item 7). The price is the hold (a pure function of
 * the body, so the paid retry asks for the same amount): the settled payment mints that many
 * credits to the paying wallet's account and, in the same transaction, holds them for the
 * reply. The reply then settles like any other: what it did not use is released to the
 * wallet's account, where it stays as credits the same wallet spends on its next call (or with
 * an API key for that wallet).
 */
export async function payForChat(
  ctx: AppContext,
  paid: PaidRequest,
  plan: ChatPlan,
  onRateLimitCounted?: (decision: RateLimitDecision) => void,
): Promise<PaymentOutcome<{ scope: NetworkScope; hold: Hold }>> {
  // Offered on each network whose channels can honour the routing preferences.
  const prices = await offeredPrices(ctx.payments.networks(), (network) => {
    checkChatRouting(ctx, plan, network);
    // A ledger unit is one USDC base unit.
    return { network, amount: plan.hold, credits: plan.hold, purpose: "generation" };
  });
  return acceptPayment(
    ctx,
    {
      ...paid,
      prices,
      description: `a chat reply from ${plan.model.id} of up to ${plan.replyTokens} tokens: at most ${formatCredits(plan.hold)} credits, the rest kept as credits`,
    },
    async (tx, payment) => {
      const scope = { accountId: payment.accountId, network: payment.network };
      const { hold } = await placeHold(tx, chatHoldInput(tx, scope, plan));
      return { scope, hold };
    },
    async (scope) => {
      const decision = await enforceRateLimit(ctx, { kind: "account", ...scope }, "generate");
      if (decision) onRateLimitCounted?.(decision);
    },
  );
}
