import type { ServiceContext } from "../context.js";
import { checkGenerationInvariants } from "./generations/invariants.js";
import { checkLedgerInvariants } from "./ledger/invariants.js";
import { checkRoyaltyInvariants } from "./passes/invariants.js";
import { checkPaymentInvariants } from "./payments/invariants.js";
import { checkPayoutInvariants } from "./payouts/invariants.js";

/**
 * Every invariant set over money, in one list: the ledger from its history, results against
 * their holds, payments against their mints, royalties against their uses, payouts against their
 * holds. `polyforge ledger check` and every money test run this same list, so an invariant added
 * here is checked by both. Returns one line per violation; empty when everything holds.
 */
export async function checkAllInvariants(ctx: ServiceContext): Promise<string[]> {
  return [
    ...(await checkLedgerInvariants(ctx)),
    ...(await checkGenerationInvariants(ctx)),
    ...(await checkPaymentInvariants(ctx)),
    ...(await checkRoyaltyInvariants(ctx)),
    ...(await checkPayoutInvariants(ctx)),
  ];
}
