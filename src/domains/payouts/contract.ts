import { z } from "zod";
import { pageSchema } from "../../http/cursor.js";
import { describeFields, route } from "../../http/openapi/contract.js";
import { creditsInput, creditsJson } from "../../lib/credits.js";
import { networks } from "../../lib/network.js";

export const payoutRequest = z
  .object({
    credits: creditsInput(
      z
        .number()
        .positive()
        .max(1_000_000_000_000)
        .describe(
          "Credits of earnings to pay out (1 credit = 0.01 USDC, at most 4 decimals); all available if absent.",
        ),
    ).optional(),
  })
  .strict();

export const payoutsQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z
      .string()
      .regex(/^po_[0-9a-z]{26}$/, "not a cursor")
      .optional(),
  })
  .strict();

/** What the payout routes answer, and their entries in the OpenAPI document. */

export const payout = z
  .object({
    id: z.string().describe("po_…"),
    network: z.enum(networks),
    status: z
      .enum(["pending", "broadcast", "paid", "failed"])
      .describe(
        "pending: earnings held, nothing sent yet; broadcast: the transaction is sent, the chain has not decided; paid: the USDC arrived; failed: nothing was sent or it reverted, and the earnings are available again.",
      ),
    credits: creditsJson("Earnings paid out, in credits."),
    amountUsdc: z.string().describe("USDC sent, as a decimal string with 6 places."),
    to: z.string().describe("The account's wallet, which receives the USDC."),
    from: z.string().describe("The treasury wallet that sends it."),
    transaction: z.string().nullable().describe("The transfer's transaction hash, once signed."),
    failureReason: z.string().nullable(),
    createdAt: z.iso.datetime(),
    completedAt: z.iso.datetime().nullable().describe("When it was paid or failed."),
  })
  .meta({ id: "Payout" });

const payoutExample = {
  id: "po_01kaxyz0000000000000000000",
  network: "test",
  status: "paid",
  credits: 1500,
  amountUsdc: "15.000000",
  to: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  from: "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
  transaction: "0x5e1f0c7b8c1a3f1f2d7e5c4b3a29180f6e5d4c3b2a19080f7e6d5c4b3a291807",
  failureReason: null,
  createdAt: "2026-11-21T19:20:01.123Z",
  completedAt: "2026-11-21T19:20:03.456Z",
};

export const payoutContracts = {
  createPayout: route({
    method: "post",
    path: "/v1/profile/payouts",
    operationId: "createPayout",
    summary: "Pay out earnings in USDC to the account's wallet",
    description:
      "Sends available earnings (royalties) on the key's network as USDC from the treasury to the account's wallet: 1 credit = 0.01 USDC. The earnings are held before anything is sent, so concurrent payouts cannot overdraw, and return if the transfer fails. An Idempotency-Key is required: a retry with the same key returns the same payout, as it stands now, and never pays twice.",
    tag: "Creators",
    auth: ["apiKey"],
    body: { schema: payoutRequest, example: { credits: 1500 } },
    idempotent: "required",
    responses: {
      201: {
        description: "Paid: the transfer is mined.",
        schema: payout,
        example: payoutExample,
      },
      202: {
        description:
          "Sent but not confirmed yet (or queued behind another payout): follow it with GET /v1/profile/payouts; do not ask again with a new key.",
        schema: payout,
        example: { ...payoutExample, status: "broadcast", completedAt: null },
      },
    },
    errors: [
      "payout_below_minimum",
      "insufficient_earnings",
      "payout_wallet_missing",
      "payout_failed",
      "payouts_unavailable",
    ],
  }),
  listPayouts: route({
    method: "get",
    path: "/v1/profile/payouts",
    operationId: "listPayouts",
    summary: "The account's payouts on the key's network, newest first",
    tag: "Creators",
    auth: ["apiKey"],
    query: describeFields(payoutsQuery, { cursor: "nextCursor from the previous page." }),
    responses: {
      200: {
        description: "A page of payouts.",
        schema: pageSchema(payout),
        example: { data: [payoutExample], nextCursor: null },
      },
    },
    errors: [],
  }),
};
