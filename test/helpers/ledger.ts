import { expect } from "vitest";
import type { ServiceContext } from "../../src/context.js";
import { checkGenerationInvariants } from "../../src/domains/generations/invariants.js";
import { checkLedgerInvariants } from "../../src/domains/ledger/invariants.js";
import { checkRoyaltyInvariants } from "../../src/domains/passes/invariants.js";
import { checkPaymentInvariants } from "../../src/domains/payments/invariants.js";
import { checkPayoutInvariants } from "../../src/domains/payouts/invariants.js";

/** Every money scenario ends here: the ledger's invariants, and every generation result
 * agreeing with its hold, must hold whatever happened. */
export async function expectMoneyInvariants(ctx: ServiceContext) {
  expect(await checkLedgerInvariants(ctx)).toEqual([]);
  expect(await checkGenerationInvariants(ctx)).toEqual([]);
  expect(await checkPaymentInvariants(ctx)).toEqual([]);
  expect(await checkRoyaltyInvariants(ctx)).toEqual([]);
  expect(await checkPayoutInvariants(ctx)).toEqual([]);
}
