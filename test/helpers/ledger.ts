import { expect } from "vitest";
import type { ServiceContext } from "../../src/context.js";
import { checkAllInvariants } from "../../src/domains/invariants.js";

/** Every money scenario ends here: the ledger's invariants, and every generation result
 * agreeing with its hold, must hold whatever happened. The same list `polyforge ledger check`
 * runs. */
export async function expectMoneyInvariants(ctx: ServiceContext) {
  expect(await checkAllInvariants(ctx)).toEqual([]);
}
