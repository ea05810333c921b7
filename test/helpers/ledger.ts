import { expect } from "vitest";
import type { ServiceContext } from "../../src/context.js";
import { checkLedgerInvariants } from "../../src/domains/ledger/invariants.js";

/** Every ledger scenario ends here: the invariants must hold, whatever happened. */
export async function expectLedgerInvariants(ctx: ServiceContext) {
  expect(await checkLedgerInvariants(ctx)).toEqual([]);
}
