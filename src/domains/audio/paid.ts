import type { AppContext } from "../../context.js";
import { formatCredits } from "../../lib/credits.js";
import type { NetworkScope } from "../accounts/caller.js";
import { placeHold } from "../ledger/service.js";
import {
  acceptPayment,
  offeredPrices,
  type PaidRequest,
  type PaymentOutcome,
} from "../payments/accept.js";
import type { RateLimitDecision } from "../ratelimits/service.js";
import { enforceRateLimit } from "../ratelimits/service.js";
import { type AudioPlan, audioHoldInput, checkAudioRouting, newAudioHoldId } from "./service.js";

/**
 * Speech or a transcription paid per call with x402 (DESIGN §4): the price is the exact quote
 * (a pure function of the body: the input's characters, the file's seconds), so the paid retry
 * asks for the same amount. The settled payment mints that many credits to the paying wallet's
 * account and, in the same transaction, holds them for the call; the call then posts the hold
 * or voids it, and a voided one stays on the wallet's account as credits.
 */
export async function payForAudio(
  ctx: AppContext,
  paid: PaidRequest,
  plan: Pick<AudioPlan<unknown>, "kind" | "model" | "cost" | "serves" | "routing">,
  what: string,
  onRateLimitCounted?: (decision: RateLimitDecision) => void,
): Promise<PaymentOutcome<{ scope: NetworkScope; holdId: string }>> {
  // Offered on each network whose channels can honour the routing preferences.
  const prices = await offeredPrices(ctx.payments.networks(), (network) => {
    checkAudioRouting(ctx, plan, network);
    // A ledger unit is one USDC base unit.
    return { network, amount: plan.cost, credits: plan.cost, purpose: "generation" };
  });
  return acceptPayment(
    ctx,
    {
      ...paid,
      prices,
      description: `${what} with ${plan.model.id}: ${formatCredits(plan.cost)} credits`,
    },
    async (tx, payment) => {
      const scope = { accountId: payment.accountId, network: payment.network };
      const holdId = newAudioHoldId();
      await placeHold(tx, audioHoldInput(tx, scope, plan, holdId));
      return { scope, holdId };
    },
    async (scope) => {
      const decision = await enforceRateLimit(ctx, { kind: "account", ...scope }, "generate");
      if (decision) onRateLimitCounted?.(decision);
    },
  );
}
