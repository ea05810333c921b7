import { setTimeout as sleep } from "node:timers/promises";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import { findAudioModel, speechFormats } from "../domains/catalog/audio-models.js";
import { aspectRatios, imageResolutions, videoResolutions } from "../domains/catalog/models.js";
import { untilSettled } from "../domains/generations/inline.js";
import { generateRequestFields, MAX_MODELS } from "../domains/generations/request.js";
import { ApiError, type GenerationJson, type PolyforgeApi } from "./api.js";
import { answer, generating, reading, type ToolExtra } from "./tool-answer.js";

/**
 * generate_image, generate_video, generate_audio and get_generation: submit, wait with backoff,
 * read back (speech, priced and made at once, answers directly).
 */

const resultShape = z.object({
  model: z.string(),
  status: z.string(),
  url: z.string().nullable().describe("The image or video; opens without a key for 24 hours."),
  fps: z.number().nullable().optional().describe("A video's frame rate."),
  progress: z.number().nullable(),
  cost: z.number().describe("Credits (1 credit = $0.01)."),
  routing: z.unknown().describe("Which upstream channel served it, and each attempt."),
  error: z.unknown(),
});
const generationShape = {
  generationId: z.string(),
  status: z.enum(["pending", "processing", "completed", "failed"]),
  done: z.boolean().describe("False when the wait ran out first: call get_generation later."),
  cost: z.object({ quoted: z.number(), charged: z.number(), refunded: z.number() }),
  results: z.array(resultShape),
};

/**
 * The tools' fields are POST /v1/generate's own, so a tool cannot accept what the API refuses.
 * Only descriptions for agents are the tools' own, and three narrowings: the catalog's aspect
 * ratios and resolutions as enums (the API takes any string so that quoting names the problem
 * with its own code) and the API's per-generation model limit, which it checks when quoting.
 * Defaults stay the API's: a field left out here is left out of the body.
 */
const request = generateRequestFields.shape;
const generateFields = {
  prompt: request.prompt.describe(
    "What to generate, in plain words, up to 10,000 characters (some models take fewer: list_models shows each one's limits.maxPromptLength). Optional with a templateId: it follows the template.",
  ),
  aspectRatio: z.enum(aspectRatios).optional(),
  referenceImageUrls: request.referenceImageUrls
    .unwrap()
    .optional()
    .describe("Images to work from."),
  stylePassIds: request.stylePassIds
    .unwrap()
    .optional()
    .describe("Style passes to apply, in order."),
  templateId: request.templateId,
  templateVariables: request.templateVariables,
  seed: request.seed,
};
const models = (description: string) => request.models.max(MAX_MODELS).describe(description);
const waitSeconds = (seconds: number, description: string) =>
  z.number().int().min(0).max(600).default(seconds).describe(description);

// The result's URL sits under imageUrl, videoUrl or audioUrl, after the generation's media type.
const urlOf = (r: GenerationJson["results"][number]): string | null => {
  const media = r as {
    imageUrl?: string | null;
    videoUrl?: string | null;
    audioUrl?: string | null;
  };
  return media.imageUrl ?? media.videoUrl ?? media.audioUrl ?? null;
};

function summary(g: GenerationJson, done: boolean) {
  return {
    generationId: g.generationId,
    status: g.status,
    done,
    cost: g.cost,
    results: g.results.map((r) => ({
      model: r.model,
      status: r.status,
      url: urlOf(r),
      fps: r.fps,
      progress: r.progress ?? null,
      cost: r.cost,
      routing: r.routing ?? null,
      error: r.error ?? null,
    })),
  };
}

const finished = (g: GenerationJson) => g.status === "completed" || g.status === "failed";
const progressOf = (g: GenerationJson) =>
  Math.round(
    g.results.reduce(
      (sum, r) =>
        sum + (r.status === "completed" || r.status === "failed" ? 100 : (r.progress ?? 0)),
      0,
    ) / Math.max(1, g.results.length),
  );

export interface ToolOptions {
  /** First poll delay; each next one is 1.5 times longer, up to maxPollMs. */
  firstPollMs?: number;
  maxPollMs?: number;
}

export function registerGenerationTools(
  server: McpServer,
  api: PolyforgeApi,
  options: ToolOptions,
): void {
  const firstPoll = options.firstPollMs ?? 500;
  const maxPoll = options.maxPollMs ?? 5_000;

  async function generateAndWait(
    body: Record<string, unknown>,
    waitSeconds: number,
    extra: ToolExtra,
  ) {
    const token = extra._meta?.progressToken;
    let reported = -1;
    const report = async (progress: number, message: string) => {
      if (token === undefined || progress <= reported) return;
      reported = progress;
      await extra.sendNotification({
        method: "notifications/progress",
        params: { progressToken: token, progress, total: 100, message },
      });
    };
    return answer(async () => {
      const { generationId, running } = await api.generate(body, { wait: waitSeconds > 0 });
      await report(0, `submitted ${generationId}`);
      const deadline = Date.now() + waitSeconds * 1000;
      // The client going away and this process shutting down both end the wait, not the work.
      const quit = api.stopping ? AbortSignal.any([extra.signal, api.stopping]) : extra.signal;
      // Run in this process: its end is the first moment to look, so no poll waits on a timer.
      if (running) await untilSettled(running, deadline - Date.now(), quit);
      let delay = firstPoll;
      let last: GenerationJson | undefined;
      for (;;) {
        // Waiting polls count against the caller's poll limit; one refused is skipped, not fatal.
        const polled = await api.status([generationId]).catch((err: unknown) => {
          if (err instanceof ApiError && err.code === "rate_limited" && last) return undefined;
          throw err;
        });
        const generation = polled ? polled.generations[generationId] : last;
        if (!generation) throw new ApiError("not_found", `Generation ${generationId} not found.`);
        last = generation;
        await report(progressOf(generation), generation.status);
        const done = finished(generation);
        if (done || Date.now() + delay > deadline || quit.aborted) {
          return summary(generation, done);
        }
        await sleep(delay, undefined, { signal: quit }).catch(() => undefined);
        delay = Math.min(maxPoll, Math.round(delay * 1.5));
      }
    });
  }

  server.registerTool(
    "generate_image",
    {
      title: "Generate images",
      description:
        "Generate an image with one or more models at once (e.g. gpt-image-2 and seedream-4.5), and wait for the results. Costs credits; returns each model's image URL, cost and which upstream served it.",
      inputSchema: {
        ...generateFields,
        models: models("Model ids or aliases; list_models shows them."),
        resolution: z.enum(imageResolutions).optional(),
        waitSeconds: waitSeconds(120, "How long to wait for the images."),
      },
      outputSchema: generationShape,
      annotations: generating,
    },
    async ({ waitSeconds, ...input }, extra) =>
      generateAndWait({ ...input, mediaType: "image" }, waitSeconds, extra as ToolExtra),
  );

  server.registerTool(
    "generate_video",
    {
      title: "Generate a video",
      description:
        "Generate a video with a video model (e.g. veo3.1-fast, kling-v2-6, sora-2-preview) for a duration in seconds, optionally at a frame rate the model offers, and wait for it. Costs credits; returns the video URL, cost and routing.",
      inputSchema: {
        ...generateFields,
        models: models("Video model ids or aliases."),
        // Required here: a video tool call always names its length (the API refuses one without).
        duration: request.duration
          .unwrap()
          .max(60)
          .describe("Seconds; one of the model's durations."),
        fps: request.fps.describe(
          "Frames a second; one of every model's capabilities.fps.options (list_models). Without it, each model's default.",
        ),
        resolution: z.enum(videoResolutions).optional(),
        waitSeconds: waitSeconds(300, "How long to wait for the video."),
      },
      outputSchema: generationShape,
      annotations: generating,
    },
    async ({ waitSeconds, ...input }, extra) =>
      generateAndWait({ ...input, mediaType: "video" }, waitSeconds, extra as ToolExtra),
  );

  server.registerTool(
    "generate_audio",
    {
      title: "Generate audio",
      description:
        "Make audio with an audio model (list_models with mediaType audio): speech from text with a speech model (e.g. gpt-4o-mini-tts, with a voice), or music and sound effects from a prompt for a duration in seconds (waits for the clip like generate_video). Costs credits; speech comes back as audio content, a clip as a URL, each with its cost and routing.",
      inputSchema: {
        model: z.string().min(1).describe("An audio model's id."),
        prompt: z
          .string()
          .min(1)
          .max(10_000)
          .describe(
            "For speech, the words to say (up to the model's limit); otherwise the clip to make.",
          ),
        voice: z
          .string()
          .min(1)
          .optional()
          .describe("Speech only: one of the model's voices (its first by default)."),
        format: z
          .enum(speechFormats)
          .optional()
          .describe("Speech only: the audio format (mp3 by default)."),
        duration: z
          .number()
          .int()
          .min(1)
          .max(600)
          .optional()
          .describe("Music and sound effects: seconds, one of the model's durations."),
        seed: request.seed,
        waitSeconds: waitSeconds(300, "Music and sound effects: how long to wait for the clip."),
      },
      outputSchema: {
        kind: z.enum(["speech", "clip"]),
        cost: z
          .object({ quoted: z.number(), charged: z.number(), refunded: z.number() })
          .describe("Credits."),
        speech: z
          .object({
            contentType: z.string(),
            bytes: z.number().int(),
            upstream: z.string().nullable(),
            failover: z.boolean(),
          })
          .optional()
          .describe("Speech: the audio itself is the audio content beside this."),
        clip: z.object(generationShape).optional().describe("Music or a sound effect."),
      },
      annotations: generating,
    },
    async ({ model, prompt, voice, format, duration, seed, waitSeconds }, extra) => {
      const audioModel = findAudioModel(model);
      if (audioModel?.kind !== "speech") {
        const clip = await generateAndWait(
          {
            prompt,
            models: [model],
            mediaType: "audio",
            ...(duration !== undefined && { duration }),
            ...(seed !== undefined && { seed }),
          },
          waitSeconds,
          extra as ToolExtra,
        );
        if (clip.isError || !clip.structuredContent) return clip;
        const structured = clip.structuredContent as { cost: unknown };
        const answered = { kind: "clip", cost: structured.cost, clip: structured };
        return {
          content: [{ type: "text", text: JSON.stringify(answered) }],
          structuredContent: answered,
        };
      }
      let audio = "";
      let mimeType = "";
      const result = await answer(async () => {
        const speech = await api.speech(
          {
            model,
            input: prompt,
            voice: voice ?? audioModel.voices[0],
            ...(format && { response_format: format }),
          },
          (extra as ToolExtra).signal,
        );
        audio = speech.audioBase64;
        mimeType = speech.contentType;
        return {
          kind: "speech",
          // Speech is quoted exactly: what was held is what was charged.
          cost: { quoted: speech.charged, charged: speech.charged, refunded: 0 },
          speech: {
            contentType: speech.contentType,
            bytes: Buffer.from(speech.audioBase64, "base64").length,
            upstream: speech.upstream,
            failover: speech.failover,
          },
        };
      });
      if (!result.isError) result.content.push({ type: "audio", data: audio, mimeType });
      return result;
    },
  );

  server.registerTool(
    "get_generation",
    {
      title: "Get generations",
      description: "The status and results of earlier generations, by id.",
      inputSchema: { ids: z.array(z.string().min(1)).min(1).max(50) },
      outputSchema: {
        generations: z
          .record(z.string(), z.object(generationShape))
          .describe("Keyed by generation id, as GET /v1/generate/status answers."),
        notFound: z.array(z.string()),
      },
      annotations: reading,
    },
    async ({ ids }) =>
      answer(async () => {
        const { generations, notFound } = await api.status(ids);
        return {
          generations: Object.fromEntries(
            Object.entries(generations).map(([id, g]) => [id, summary(g, finished(g))]),
          ),
          notFound,
        };
      }),
  );
}
