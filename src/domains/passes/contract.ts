import { z } from "zod";
import { pageSchema } from "../../http/cursor.js";
import { route } from "../../http/openapi/contract.js";
import { creditsInput, creditsJson } from "../../lib/credits.js";
import { networks } from "../../lib/network.js";
import { aspectRatios, imageResolutions, videoResolutions } from "../catalog/models.js";
import { passSorts } from "./service.js";

/** The highest per-use fee a pass may ask: $10 a use. */
export const MAX_PASS_FEE = 1000;

const text = (max: number) =>
  z
    .string()
    .trim()
    .max(max)
    .regex(/^[^\p{Cc}]*$/u, "must not contain control characters");
const tag = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z0-9][a-z0-9-]{0,31}$/, "a tag is 1–32 letters, digits or dashes");
const uploadId = z.string().regex(/^img_[0-9a-z]{26}$/, "not an upload id");

export const passDefaults = z
  .object({
    aspectRatio: z.enum(aspectRatios).optional(),
    resolution: z.enum([...imageResolutions, ...videoResolutions]).optional(),
  })
  .strict();

const passFields = {
  name: text(80).min(1),
  description: text(2000),
  stylePrompt: z
    .string()
    .trim()
    .min(1)
    .max(1000)
    .describe("Appended to the prompt of every generation that applies the pass."),
  negativePrompt: z.string().trim().min(1).max(1000).nullable(),
  defaults: passDefaults.describe("Options for generations that leave them out."),
  previewImageIds: z.array(uploadId).max(8).describe("Your uploads (POST /v1/uploads)."),
  tags: z.array(tag).max(10),
  mediaType: z.enum(["image", "video"]),
  fee: creditsInput(
    z
      .number()
      .min(0)
      .max(MAX_PASS_FEE)
      .describe("Credits per use (at most 4 decimals): each model result that applies the pass."),
  ),
  visibility: z
    .enum(["public", "unlisted"])
    .describe("Unlisted passes apply by id but are not listed."),
};

/** A pass's resolution default must be one its media type has. */
function matchingResolution(
  pass: {
    mediaType?: "image" | "video" | undefined;
    defaults?: { resolution?: string } | undefined;
  },
  issues: z.core.$RefinementCtx,
) {
  const resolution = pass.defaults?.resolution;
  if (!resolution || !pass.mediaType) return;
  const allowed: readonly string[] =
    pass.mediaType === "image" ? imageResolutions : videoResolutions;
  if (!allowed.includes(resolution)) {
    issues.addIssue({
      code: "custom",
      path: ["defaults", "resolution"],
      message: `a ${pass.mediaType} pass takes one of ${allowed.join(", ")}`,
    });
  }
}

export const createPassRequest = z
  .object({
    ...passFields,
    description: passFields.description.default(""),
    negativePrompt: passFields.negativePrompt.optional(),
    defaults: passFields.defaults.default({}),
    previewImageIds: passFields.previewImageIds.default([]),
    tags: passFields.tags.default([]),
    mediaType: passFields.mediaType.default("image"),
    visibility: passFields.visibility.default("public"),
  })
  .strict()
  .superRefine(matchingResolution);

export const updatePassRequest = z
  .object(passFields)
  .partial()
  .strict()
  .superRefine((patch, issues) => {
    if (Object.keys(patch).length === 0) {
      issues.addIssue({ code: "custom", path: [], message: "nothing to change" });
    }
    matchingResolution(patch, issues);
  });

export const passIdParams = z.object({
  id: z.string().regex(/^pass_[0-9a-z]{26}$/, "not a pass id"),
});

export const listPassesQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().max(200).optional(),
    sort: z.enum(passSorts).default("newest"),
    creator: z
      .string()
      .regex(/^(me|acc_[0-9a-z]{26})$/, "an account id, or me")
      .optional(),
    tag: tag.optional(),
    mediaType: z.enum(["image", "video"]).optional(),
    includeArchived: z
      .enum(["true", "false"])
      .transform((v) => v === "true")
      .optional()
      .describe("Your own archived passes too."),
  })
  .strict();

export const analyticsQuery = z.object({ range: z.enum(["7d", "30d"]).default("7d") }).strict();

/** What the style pass and creator profile routes answer, and their OpenAPI entries. */

const credits = creditsJson();
const timestamp = z.iso.datetime();

export const stylePass = z
  .object({
    id: z.string(),
    creatorId: z.string(),
    network: z.enum(networks),
    name: z.string(),
    description: z.string(),
    stylePrompt: z.string(),
    negativePrompt: z.string().nullable(),
    defaults: passDefaults,
    previewImageIds: z.array(z.string()),
    previewImageUrls: z.array(z.string()).describe("Signed links that open for 24 hours."),
    tags: z.array(z.string()),
    mediaType: z.enum(["image", "video"]),
    fee: credits.describe("Per model result that applies the pass."),
    visibility: z.enum(["public", "unlisted"]),
    uses: z.number().int().describe("Charged model results that applied it."),
    status: z.enum(["active", "archived"]),
    createdAt: timestamp,
    updatedAt: timestamp,
    archivedAt: timestamp.nullable(),
  })
  .meta({ id: "StylePass" });

const passExample = {
  id: "pass_01kaxyz0000000000000000000",
  creatorId: "acc_01kaxyz0000000000000000000",
  network: "test",
  name: "Ink wash",
  description: "Loose sumi-e brushwork.",
  stylePrompt: "ink wash painting, loose brushwork, rice paper texture",
  negativePrompt: "photograph, 3d render",
  defaults: { aspectRatio: "3:4" },
  previewImageIds: [],
  previewImageUrls: [],
  tags: ["ink", "painting"],
  mediaType: "image",
  fee: 2,
  visibility: "public",
  uses: 0,
  status: "active",
  createdAt: "2026-11-21T19:20:01.123Z",
  updatedAt: "2026-11-21T19:20:01.123Z",
  archivedAt: null,
};

export const earnings = z.object({
  network: z.enum(networks),
  totalEarned: credits.describe("Every royalty ever earned on this network."),
  available: credits.describe("In the earnings account now: what a payout can send."),
  pendingPayout: credits.describe("Held for payouts the chain has not decided yet."),
  paidOut: credits.describe("Sent to your wallet as USDC (POST /v1/profile/payouts)."),
  passes: z.array(
    z.object({
      passId: z.string(),
      name: z.string(),
      uses: z.number().int(),
      feesCharged: credits.describe("Fees its users paid, before the platform's share."),
      earned: credits,
    }),
  ),
});

const dayStats = {
  uses: z.number().int(),
  uniqueUsers: z.number().int(),
  earned: credits,
};

export const analytics = z.object({
  network: z.enum(networks),
  range: z.enum(["7d", "30d"]),
  from: z.iso.date().describe("The first UTC day."),
  to: z.iso.date().describe("The last UTC day (today)."),
  passes: z.array(
    z.object({
      passId: z.string(),
      name: z.string(),
      ...dayStats,
      days: z.array(z.object({ date: z.iso.date(), ...dayStats })),
    }),
  ),
});

export const passContracts = {
  createPass: route({
    method: "post",
    path: "/v1/passes",
    operationId: "createPass",
    summary: "Publish a style pass",
    description:
      "A prompt fragment (and negative prompt, default options, previews) that others apply to their generations with stylePassIds, for a per-use fee. The pass belongs to the key's network.",
    tag: "Creators",
    auth: ["apiKey"],
    body: {
      schema: createPassRequest,
      example: {
        name: "Ink wash",
        stylePrompt: "ink wash painting, loose brushwork, rice paper texture",
        negativePrompt: "photograph, 3d render",
        defaults: { aspectRatio: "3:4" },
        tags: ["ink", "painting"],
        fee: 2,
      },
    },
    idempotent: true,
    responses: { 201: { description: "The pass.", schema: stylePass, example: passExample } },
    errors: ["invalid_reference_image"],
  }),
  listPasses: route({
    method: "get",
    path: "/v1/passes",
    operationId: "listPasses",
    summary: "Browse style passes",
    description:
      "Public passes on the key's network and your own unlisted ones; archived passes only with includeArchived, and only yours. Sorted by newest, most_used, fee_asc or fee_desc; pages with nextCursor.",
    tag: "Creators",
    auth: ["apiKey"],
    query: listPassesQuery,
    responses: {
      200: {
        description: "A page of passes.",
        schema: pageSchema(stylePass),
        example: { data: [passExample], nextCursor: null },
      },
    },
    errors: [],
  }),
  getPass: route({
    method: "get",
    path: "/v1/passes/:id",
    operationId: "getPass",
    summary: "One style pass",
    description: "Any pass on the key's network, unlisted and archived ones included.",
    tag: "Creators",
    auth: ["apiKey"],
    params: passIdParams,
    responses: { 200: { description: "The pass.", schema: stylePass, example: passExample } },
    errors: ["not_found"],
  }),
  updatePass: route({
    method: "patch",
    path: "/v1/passes/:id",
    operationId: "updatePass",
    summary: "Change a style pass",
    description:
      "Its creator only. A new fee applies to generations quoted from then on; those already quoted pay what they were quoted.",
    tag: "Creators",
    auth: ["apiKey"],
    params: passIdParams,
    body: { schema: updatePassRequest, example: { fee: 3, tags: ["ink"] } },
    responses: { 200: { description: "The pass.", schema: stylePass, example: passExample } },
    errors: ["not_found", "not_creator", "pass_archived", "invalid_reference_image"],
  }),
  archivePass: route({
    method: "post",
    path: "/v1/passes/:id/archive",
    operationId: "archivePass",
    summary: "Archive a style pass",
    description:
      "No generation can apply it from then on; generations that did keep their record, and those in flight still pay its royalty. Archiving twice answers the same.",
    tag: "Creators",
    auth: ["apiKey"],
    params: passIdParams,
    responses: {
      200: {
        description: "The archived pass.",
        schema: stylePass,
        example: { ...passExample, status: "archived", archivedAt: "2026-11-22T08:00:00.000Z" },
      },
    },
    errors: ["not_found", "not_creator"],
  }),
  getEarnings: route({
    method: "get",
    path: "/v1/profile/earnings",
    operationId: "getEarnings",
    summary: "Royalties earned, per pass",
    description:
      "On the key's network: each of your passes' uses, the fees charged and your share of them, and what is available in your earnings account.",
    tag: "Creators",
    auth: ["apiKey"],
    responses: {
      200: {
        description: "Earnings.",
        schema: earnings,
        example: {
          network: "test",
          totalEarned: 16,
          available: 6,
          pendingPayout: 0,
          paidOut: 10,
          passes: [
            {
              passId: passExample.id,
              name: "Ink wash",
              uses: 10,
              feesCharged: 20,
              earned: 16,
            },
          ],
        },
      },
    },
    errors: [],
  }),
  getPassAnalytics: route({
    method: "get",
    path: "/v1/profile/analytics",
    operationId: "getPassAnalytics",
    summary: "Uses, users and earnings per pass, per day",
    description: "The last 7 or 30 UTC days, today included, every day present.",
    tag: "Creators",
    auth: ["apiKey"],
    query: analyticsQuery,
    responses: {
      200: {
        description: "Per pass, the range's totals and each day.",
        schema: analytics,
        example: {
          network: "test",
          range: "7d",
          from: "2026-11-15",
          to: "2026-11-21",
          passes: [
            {
              passId: passExample.id,
              name: "Ink wash",
              uses: 3,
              uniqueUsers: 2,
              earned: 4,
              days: [{ date: "2026-11-21", uses: 3, uniqueUsers: 2, earned: 4 }],
            },
          ],
        },
      },
    },
    errors: [],
  }),
};
