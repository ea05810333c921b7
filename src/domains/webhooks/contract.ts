import { z } from "zod";
import { route } from "../../http/openapi/contract.js";

/** What the webhook secret routes answer, and their entries in the OpenAPI document. */

export const webhookSecret = z.object({
  secret: z.string().describe("whsec_…: verifies the Standard Webhooks signature."),
  createdAt: z.iso.datetime(),
  previousSecretValidUntil: z.iso
    .datetime()
    .nullable()
    .describe("After a rotation, messages are signed with the old secret too until then."),
});

export const webhookContracts = {
  getWebhookSecret: route({
    method: "get",
    path: "/v1/webhooks/secret",
    operationId: "getWebhookSecret",
    summary: "The account's webhook signing secret",
    tag: "Webhooks",
    auth: ["apiKey", "session"],
    responses: { 200: { description: "The secret.", schema: webhookSecret } },
    errors: [],
  }),
  rotateWebhookSecret: route({
    method: "post",
    path: "/v1/webhooks/secret/rotate",
    operationId: "rotateWebhookSecret",
    summary: "Rotate the webhook signing secret",
    description: "The previous secret keeps signing for a day.",
    tag: "Webhooks",
    auth: ["apiKey", "session"],
    responses: { 200: { description: "The new secret.", schema: webhookSecret } },
    errors: [],
  }),
};
