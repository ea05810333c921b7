import { z } from "zod";
import { route } from "../../http/openapi/contract.js";
import { creditsJson } from "../../lib/credits.js";
import { networks } from "../../lib/network.js";

/** What the API key routes take and answer, and their entries in the OpenAPI document. */

/** Whole credits at most: a limit is a budget, not a price. */
const MAX_LIMIT_CREDITS = 10_000_000_000;

const limitInput = (describe: string) =>
  z.number().int().min(0).max(MAX_LIMIT_CREDITS).nullable().optional().describe(describe);

export const apiKeyLimitsInput = z
  .object({
    total: limitInput(
      "Whole credits the key may spend in all (settled charges plus open holds); null removes the limit.",
    ),
    perDay: limitInput(
      "Whole credits the key may spend per UTC day, counted by the day a hold was placed; null removes the limit.",
    ),
  })
  .strict()
  .describe(
    "Spend limits. A request that would pass one is 402 key_limit_exceeded; a refunded or failed request gives its share back.",
  );

export const createApiKeyRequest = z
  .object({
    name: z
      .string()
      .trim()
      .min(1)
      .max(100)
      .regex(/^[^\p{Cc}]*$/u, "must not contain control characters"),
    network: z.enum(networks).optional(),
    limits: apiKeyLimitsInput.optional(),
  })
  .strict();

export const updateApiKeyRequest = z.object({ limits: apiKeyLimitsInput }).strict();

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
    limits: z
      .object({
        total: z.number().int().nullable().describe("Credits in all, or null: no limit."),
        perDay: z.number().int().nullable().describe("Credits per UTC day, or null: no limit."),
      })
      .describe("The key's spend limits."),
    spent: z
      .object({
        total: creditsJson("Settled charges plus open holds of the key, in credits."),
        today: creditsJson("The same for the holds placed today (UTC)."),
      })
      .describe("What the key has spent against its limits."),
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
  limits: { total: 5000, perDay: 500 },
  spent: { total: 1204.5, today: 96 },
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
    body: {
      schema: createApiKeyRequest,
      example: { name: "laptop", network: "test", limits: { total: 5000, perDay: 500 } },
    },
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
    errors: ["network_mismatch", "api_key_limit_reached", "limited_key_forbidden"],
  }),
  updateApiKey: route({
    method: "patch",
    path: "/v1/api-keys/:id",
    operationId: "updateApiKey",
    summary: "Change an API key's spend limits",
    description:
      "Sets the limits named in `limits` (null removes one; one left out stays as it was). What the key has spent is kept: a limit lowered below it refuses the key's next request. A key with a limit cannot change limits (its own or another's) nor create keys: 403 limited_key_forbidden.",
    tag: "API keys",
    auth: ["apiKey", "session"],
    params: apiKeyIdParams,
    body: { schema: updateApiKeyRequest, example: { limits: { total: 10000, perDay: null } } },
    responses: {
      200: {
        description: "The key with its new limits.",
        schema: apiKey,
        example: { ...keyExample, limits: { total: 10000, perDay: null } },
      },
    },
    errors: ["not_found", "limited_key_forbidden"],
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
