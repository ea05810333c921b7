import { z } from "zod";
import { pageSchema } from "../../http/cursor.js";
import { describeFields, route } from "../../http/openapi/contract.js";
import { creditsJson } from "../../lib/credits.js";
import { networks } from "../../lib/network.js";
import { tiers } from "./packs.js";
import { transferKinds } from "./service.js";

export const transactionsQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().max(64).optional(),
    kind: z.enum(transferKinds).optional(),
  })
  .strict();

/** What the balance and ledger routes answer, and their entries in the OpenAPI document. */

const credits = creditsJson();

export const balance = z.object({
  creditBalance: credits,
  heldCredits: credits.describe("Set aside for work in flight and reservations."),
  earnings: credits.describe("Royalties earned as a creator."),
  membershipTier: z.enum(tiers).describe("Follows the best credit pack bought on this network."),
  network: z.enum(networks),
});

export const ledgerEntry = z
  .object({
    id: z.string(),
    kind: z.enum(transferKinds),
    account: z.enum(["credits", "earnings"]),
    amount: creditsJson("Signed: negative leaves the account."),
    balanceAfter: credits,
    reference: z.string().nullable(),
    holdId: z.string().nullable(),
    metadata: z.record(z.string(), z.unknown()),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: "LedgerEntry" });

export const ledgerContracts = {
  getBalance: route({
    method: "get",
    path: "/v1/balance",
    operationId: "getBalance",
    summary: "Credits on the key's network",
    tag: "Credits",
    auth: ["apiKey"],
    responses: {
      200: {
        description: "The balance.",
        schema: balance,
        example: {
          creditBalance: 1000,
          heldCredits: 0,
          earnings: 0,
          membershipTier: "free",
          network: "test",
        },
      },
    },
    errors: [],
  }),
  listTransactions: route({
    method: "get",
    path: "/v1/transactions",
    operationId: "listTransactions",
    summary: "Ledger entries on the key's network, newest first",
    tag: "Credits",
    auth: ["apiKey"],
    query: describeFields(transactionsQuery, { cursor: "nextCursor from the previous page." }),
    responses: {
      200: {
        description: "A page of entries.",
        schema: pageSchema(ledgerEntry),
      },
    },
    errors: [],
  }),
};
