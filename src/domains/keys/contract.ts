import { z } from "zod";
import { route } from "../../http/openapi/contract.js";
import { networks } from "../../lib/network.js";

/** What the API key routes take and answer, and their entries in the OpenAPI document. */

export const createApiKeyRequest = z
  .object({
    name: z
      .string()
      .trim()
      .min(1)
      .max(100)
      .regex(/^[^\p{Cc}]*$/u, "must not contain control characters"),
    network: z.enum(networks).optional(),
  })
  .strict();

export const listApiKeysQuery = z.object({ network: z.enum(networks).optional() }).strict();

export const apiKeyIdParams = z.object({ id: z.string().min(1).max(64) });

export const apiKey = z
  .object({
    id: z.string(),
    name: z.string(),
    network: z.enum(networks),
    prefix: z.string().describe("sk_test_ or sk_live_."),
    last4: z.string(),
    createdAt: z.iso.datetime(),
    lastUsedAt: z.iso.datetime().nullable().describe("To the minute."),
    revokedAt: z.iso.datetime().nullable(),
  })
  .meta({ id: "ApiKey" });

export const createdApiKey = apiKey.extend({
  key: z
    .string()
    .optional()
    .describe(
      "The key itself, shown only in the first answer; the service keeps its hash. A replay (the same Idempotency-Key) leaves it out, with `Idempotent-Withheld: key`.",
    ),
});

const keyExample = {
  id: "key_01kaxyz0000000000000000000",
  name: "laptop",
  network: "test",
  prefix: "sk_test_",
  last4: "x9Qz",
  createdAt: "2026-11-21T19:20:01.123Z",
  lastUsedAt: null,
  revokedAt: null,
};

export const keyContracts = {
  createApiKey: route({
    method: "post",
    path: "/v1/api-keys",
    operationId: "createApiKey",
    summary: "Create an API key",
    description:
      "With a session, on the network named (required); with an API key, on the key's own network only. At most 3 active keys per account.",
    tag: "API keys",
    auth: ["apiKey", "session"],
    body: { schema: createApiKeyRequest, example: { name: "laptop", network: "test" } },
    idempotent: true,
    responses: {
      201: {
        description:
          "The key, with its secret shown this once. A replay of the same Idempotency-Key answers the same key without its secret, which is never stored.",
        schema: createdApiKey,
        example: { ...keyExample, key: "sk_test_…" },
        headers: {
          "Idempotent-Withheld": {
            description:
              "`key` on a replay: the secret was shown in the first answer only. A lost key cannot be shown again; revoke it and create another.",
          },
        },
      },
    },
    errors: ["network_mismatch", "api_key_limit_reached"],
  }),
  listApiKeys: route({
    method: "get",
    path: "/v1/api-keys",
    operationId: "listApiKeys",
    summary: "The account's active keys, newest first",
    description: "Never the secret: its prefix and last 4 characters.",
    tag: "API keys",
    auth: ["apiKey", "session"],
    query: listApiKeysQuery,
    responses: {
      200: {
        description: "The keys.",
        schema: z.object({ data: z.array(apiKey) }),
        example: { data: [keyExample] },
      },
    },
    errors: [],
  }),
  revokeApiKey: route({
    method: "delete",
    path: "/v1/api-keys/:id",
    operationId: "revokeApiKey",
    summary: "Revoke an API key",
    description: "It fails from the next request on. Revoking a revoked key returns it unchanged.",
    tag: "API keys",
    auth: ["apiKey", "session"],
    params: apiKeyIdParams,
    responses: { 200: { description: "The revoked key.", schema: apiKey } },
    errors: ["not_found"],
  }),
};
