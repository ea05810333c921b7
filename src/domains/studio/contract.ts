import { z } from "zod";
import { route } from "../../http/openapi/contract.js";
import { creditsInput, creditsJson } from "../../lib/credits.js";
import { networks } from "../../lib/network.js";

export const reserveRequest = z
  .object({
    credits: creditsInput(z.number().positive().max(10_000_000)),
    expiresInSeconds: z
      .number()
      .int()
      .min(60)
      .max(30 * 24 * 3600)
      .default(24 * 3600),
  })
  .strict();

export const settleRequest = z.object({ reservationId: z.string().min(1).max(64) }).strict();

/** What the batch studio routes answer, and their entries in the OpenAPI document. */

const credits = creditsJson();

export const reservation = z
  .object({
    reservationId: z.string(),
    network: z.enum(networks),
    status: z.enum(["active", "settled", "expired"]),
    reservedCredits: credits,
    availableCredits: credits,
    usedCredits: credits,
    returnedCredits: credits,
    expiresAt: z.iso.datetime(),
    createdAt: z.iso.datetime(),
    settledAt: z.iso.datetime().nullable(),
  })
  .meta({ id: "Reservation" });

export const studioContracts = {
  reserveCredits: route({
    method: "post",
    path: "/v1/studio/reserve",
    operationId: "reserveCredits",
    summary: "Reserve credits for a batch",
    description:
      "Generations draw from it with `reservationId`; settle it to get back what is left.",
    tag: "Studio",
    auth: ["apiKey"],
    body: { schema: reserveRequest, example: { credits: 200, expiresInSeconds: 3600 } },
    idempotent: true,
    responses: { 201: { description: "The reservation.", schema: reservation } },
    errors: ["insufficient_credits", "key_limit_exceeded"],
  }),
  settleReservation: route({
    method: "post",
    path: "/v1/studio/settle",
    operationId: "settleReservation",
    summary: "Settle a reservation: what is left returns to the balance",
    tag: "Studio",
    auth: ["apiKey"],
    body: { schema: settleRequest, example: { reservationId: "res_01kaxyz0000000000000000000" } },
    responses: { 200: { description: "The settled reservation.", schema: reservation } },
    errors: ["not_found"],
  }),
};
