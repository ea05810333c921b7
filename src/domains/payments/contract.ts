import { z } from "zod";
import { pageSchema } from "../../http/cursor.js";
import { describeFields, route } from "../../http/openapi/contract.js";
import { creditsJson } from "../../lib/credits.js";
import { networks } from "../../lib/network.js";
import { type PackId, packs, tiers } from "../ledger/packs.js";

export const packParams = z.object({
  pack: z.enum(Object.keys(packs) as [PackId, ...PackId[]], {
    error: `Unknown pack; the packs are ${Object.keys(packs).join(", ")}.`,
  }),
});

export const paymentsQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z
      .string()
      .regex(/^pay_[0-9a-z]{26}$/, "not a cursor")
      .optional(),
  })
  .strict();

export const nonceParams = z.object({
  nonce: z.string().regex(/^0x[0-9a-fA-F]{64}$/, "an 0x-prefixed 32-byte nonce"),
});

/** What the payments routes answer, and their entries in the OpenAPI document. */

const packIds = Object.keys(packs) as [PackId, ...PackId[]];
const paymentStatuses = ["settling", "pending", "settled", "failed"] as const;

/** The receipt a paid call carries: the payment and its transaction. */
export const paymentReceipt = z
  .object({
    id: z.string().describe("pay_…"),
    status: z.enum(paymentStatuses),
    network: z.enum(networks),
    payer: z.string().describe("The paying wallet's address."),
    transaction: z.string().nullable().describe("The settlement's transaction hash."),
  })
  .meta({ id: "PaymentReceipt" });

/**
 * A paid call whose settlement was broadcast but not confirmed in time: the credits land on
 * the paying wallet's account once the chain confirms it; the caller must not pay again.
 */
export const paymentPending = z
  .object({
    status: z.literal("payment_pending"),
    payment: paymentReceipt,
    message: z.string(),
  })
  .meta({ id: "PaymentPending" });

export const packPurchase = z
  .object({
    pack: z.enum(packIds),
    credits: creditsJson("Credits the pack added."),
    creditBalance: creditsJson(),
    membershipTier: z.enum(tiers),
    accountId: z.string(),
    payment: paymentReceipt,
    apiKey: z
      .string()
      .nullable()
      .optional()
      .describe(
        "Paid without a key: a new API key for the paying wallet's account, shown once (null if the account already has 3 keys).",
      ),
  })
  .meta({ id: "PackPurchase" });

export const payment = z
  .object({
    id: z.string(),
    network: z.enum(networks),
    payer: z.string(),
    payTo: z.string(),
    amountUsdc: z.string().describe("USDC, as a decimal string with 6 places."),
    credits: creditsJson(),
    purpose: z.enum(["pack", "generation"]),
    pack: z.enum(packIds).nullable(),
    generationId: z.string().nullable(),
    status: z.enum(paymentStatuses),
    transaction: z.string().nullable(),
    createdAt: z.iso.datetime(),
    settledAt: z.iso.datetime().nullable(),
  })
  .meta({ id: "Payment" });

export const paymentPage = pageSchema(payment);

const receiptExample = {
  id: "pay_01kaxyz0000000000000000000",
  status: "settled",
  network: "test",
  payer: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  transaction: "0x5e1f…",
};

export const paymentContracts = {
  buyCreditPack: route({
    method: "post",
    path: "/v1/credits/packs/:pack",
    operationId: "buyCreditPack",
    summary: "Buy a credit pack with USDC (x402)",
    description:
      "With an API key the pack is priced on the key's network and credits that account. Without one, any network this deployment takes payments on; the credits and a new API key go to the paying wallet's account. Starter: 1,000 credits for $8; Creator: 3,000 for $24 (creator tier); Pro: 6,000 for $40 (pro tier).",
    tag: "Credits",
    // Always paid with x402; an API key beside the payment picks the network and the account.
    auth: ["x402", ["apiKey", "x402"]],
    params: packParams,
    responses: {
      201: {
        description: "Paid and settled: the credits are on the account.",
        schema: packPurchase,
        example: {
          pack: "starter",
          credits: 1000,
          creditBalance: 1000,
          membershipTier: "free",
          accountId: "acc_01kaxyz0000000000000000000",
          payment: receiptExample,
          apiKey: "sk_test_…",
        },
      },
      202: {
        description: "The settlement was broadcast but is not confirmed yet; do not pay again.",
        schema: paymentPending,
      },
    },
    errors: [],
  }),
  listPayments: route({
    method: "get",
    path: "/v1/payments",
    operationId: "listPayments",
    summary: "The account's USDC payments on the key's network, newest first",
    tag: "Credits",
    auth: ["apiKey"],
    query: describeFields(paymentsQuery, { cursor: "The last id of the previous page." }),
    responses: { 200: { description: "A page of payments.", schema: paymentPage } },
    errors: [],
  }),
  getPaymentByNonce: route({
    method: "get",
    path: "/v1/payments/by-nonce/:nonce",
    operationId: "getPaymentByNonce",
    summary: "A payment found by its EIP-3009 authorization's nonce",
    description:
      "For a wallet whose answer was lost (the connection or the API went down after it signed): the payment its authorization made, its status, the credits it bought and the generation it paid for, if that was recorded. No credential: the nonce is 32 random bytes only the payer knows until it is on chain, and nothing here is more than the chain shows once it settled, apart from our status, credits and generation id (reading that generation still needs a key for the wallet's account, from a wallet sign-in). A payment cut off by a crash is decided from the chain within about a minute of its settlement window (2 × X402_SETTLE_TIMEOUT_MS).",
    tag: "Credits",
    auth: [],
    params: nonceParams,
    rateLimit: "poll",
    responses: { 200: { description: "The payment.", schema: payment } },
    errors: ["not_found"],
  }),
};
