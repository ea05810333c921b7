import { USDC_UNITS_PER_CENT } from "../../chain/networks.js";
import type { ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { creditUnits } from "../../lib/credits.js";
import type { Network } from "../../lib/network.js";
import { createApiKey } from "../keys/service.js";
import { type PackId, packs } from "../ledger/packs.js";
import type { PriceOnNetwork } from "./accept.js";
import type { Payment } from "./service.js";

/**
 * What a pack costs on each network it may be bought on: the key's network, crediting the key's
 * account; or, with no key, every network that takes payments, crediting the paying wallet.
 * Prices are USD cents, and one cent is 10,000 USDC base units (the price of one credit);
 * the credits minted are ledger units.
 */
export function packPrices(
  pack: PackId,
  networks: Network[],
  accountId?: string,
): { prices: PriceOnNetwork[]; description: string } {
  const offer = packs[pack];
  return {
    prices: networks.map((network) => ({
      network,
      amount: offer.priceUsdCents * USDC_UNITS_PER_CENT,
      credits: creditUnits(offer.credits),
      purpose: "pack",
      pack,
      ...(accountId && { accountId }),
    })),
    description: `the ${pack} pack: ${offer.credits} credits for $${offer.priceUsdCents / 100n}`,
  };
}

/**
 * A key for the wallet's account on the payment's network, shown once, so a wallet that bought
 * credits without a key can spend them. The payment stands whatever happens here: null when no
 * key can be made (the account's cap), and a wallet sign-in can make one later.
 */
export async function keyForPayingWallet(ctx: ServiceContext, payment: Payment) {
  try {
    const { key } = await createApiKey(
      ctx,
      { accountId: payment.accountId, network: payment.network },
      { name: `${payment.pack ?? payment.purpose} pack`, network: payment.network },
    );
    return key;
  } catch (err) {
    if (!(err instanceof AppError && err.code === "api_key_limit_reached")) {
      ctx.logger.error(
        { err, accountId: payment.accountId },
        "could not make a key for a paid pack",
      );
    }
    return null;
  }
}
