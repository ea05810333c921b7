import { z } from "zod";

/**
 * The tools' input fields, as POST /v1/generate and /v1/chat/completions take them (copied
 * from the API's public contract: this package depends on nothing of the server's, and
 * test/unit/mcp-tool-schemas.test.ts holds the copies to the API's own). The API checks
 * everything again, against its catalog, and answers with its own codes.
 */

export const imageResolutions = ["0.5K", "1K", "2K", "4K"] as const;
export const videoResolutions = ["480p", "720p", "1080p"] as const;
export const aspectRatios = ["1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "21:9"] as const;
export const speechFormats = ["mp3", "wav", "opus", "flac", "pcm"] as const;
export const MAX_MODELS = 6;
const MAX_REFERENCE_IMAGES = 8;
const MAX_PROMPT_LENGTH = 10_000;

export const seed = z
  .number()
  .int()
  .min(0)
  .max(2 ** 31 - 1)
  .optional();

const channelList = z
  .array(z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, "a channel id"))
  .min(1)
  .max(32);

/** The API's routing preferences (its `routing` field on every generation door). */
export const routing = z
  .strictObject({
    order: channelList
      .optional()
      .describe("Channels to try first, in this order; the others follow (unless `only`)."),
    only: channelList.optional().describe("Use these channels and no others."),
    ignore: channelList.optional().describe("Never use these channels."),
    sort: z
      .enum(["price", "latency"])
      .optional()
      .describe(
        "Order the channels `order` does not place: by their upstream cost, or by measured latency.",
      ),
    allowFailover: z
      .boolean()
      .optional()
      .describe("false: only the first channel is tried; if it fails, the call is refunded."),
  })
  .optional()
  .describe(
    "Which upstream channels may serve the call, and in what order. Channel ids are what results name in routing.upstream; unknown_channel lists those serving the models.",
  );

export const generateFields = {
  prompt: z
    .string()
    .trim()
    .min(1, "prompt is required")
    .optional()
    .describe(
      "What to generate, in plain words, up to 10,000 characters (some models take fewer: list_models shows each one's limits.maxPromptLength). Optional with a templateId: it follows the template.",
    ),
  aspectRatio: z.enum(aspectRatios).optional(),
  referenceImageUrls: z
    .array(z.url({ protocol: /^https?$/ }).max(2048))
    .max(MAX_REFERENCE_IMAGES)
    .optional()
    .describe("Images to work from."),
  stylePassIds: z
    .array(z.string().min(1).max(64))
    .max(10)
    .optional()
    .describe("Style passes to apply, in order."),
  templateId: z.string().min(1).max(64).optional(),
  templateVariables: z
    .record(z.string().min(1).max(64), z.string().max(MAX_PROMPT_LENGTH))
    .optional(),
  seed,
  routing,
};

export const models = (description: string) =>
  z
    .array(z.string().min(1).max(100))
    .min(1, "at least one model is required")
    .max(MAX_MODELS)
    .describe(description);

export const waitSeconds = (seconds: number, description: string) =>
  z.number().int().min(0).max(600).default(seconds).describe(description);

const textPart = z.object({ type: z.literal("text"), text: z.string() });
const imagePart = z.object({
  type: z.literal("image_url"),
  image_url: z.object({
    url: z.string().min(1),
    detail: z.enum(["auto", "low", "high"]).optional(),
  }),
});
const name = z.string().min(1).max(64).optional();

/** A chat message in OpenAI's chat-completions shape. */
export const chatMessage = z.discriminatedUnion("role", [
  z.object({ role: z.literal("system"), content: z.union([z.string(), z.array(textPart)]), name }),
  z.object({
    role: z.literal("user"),
    content: z.union([z.string(), z.array(z.discriminatedUnion("type", [textPart, imagePart]))]),
    name,
  }),
  z.object({
    role: z.literal("assistant"),
    content: z.union([z.string(), z.array(textPart), z.null()]),
    name,
  }),
]);

const credits = z
  .object({ quoted: z.number(), charged: z.number(), refunded: z.number() })
  .describe("Credits (1 credit = $0.01): held, charged, and returned.");

/** What a wallet paid for the call, in USDC (absent with an API key). */
export const payment = z
  .looseObject({ usdc: z.string() })
  .optional()
  .describe("With a wallet: the x402 payment's USDC amount and the API's receipt.");

const result = z.object({
  model: z.string(),
  status: z.string(),
  url: z
    .string()
    .nullable()
    .describe(
      "The image, video or audio; opens without a key for 24 hours (ask get_generation for a fresh one). Null before it is done and once the output expired.",
    ),
  expiredAt: z
    .string()
    .nullable()
    .optional()
    .describe("When the output was deleted after the deployment's retention period, if it was."),
  fps: z.number().nullable().optional().describe("A video's frame rate."),
  progress: z.number().nullable(),
  cost: z.number().describe("Credits (1 credit = $0.01)."),
  routing: z.unknown().describe("Which upstream channel served it, and each attempt."),
  error: z.unknown(),
});

export const generationShape = {
  generationId: z.string(),
  status: z.enum(["pending", "processing", "completed", "failed"]),
  done: z.boolean().describe("False when the wait ran out first: call get_generation later."),
  cost: credits,
  results: z.array(result),
  payment,
};

export const textOutput = {
  text: z.string(),
  model: z.string(),
  finishReason: z.string(),
  usage: z.object({ promptTokens: z.number().int(), completionTokens: z.number().int() }),
  cost: credits,
  routing: z.record(z.string(), z.unknown()),
  payment,
};

export { credits };
