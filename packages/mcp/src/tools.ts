import { setTimeout as sleep } from "node:timers/promises";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { ApiError, type GenerationJson, type PaymentJson, type PolyforgeApi } from "./api.js";
import { unitsToDollars } from "./config.js";
import {
  chatMessage,
  credits,
  generateFields,
  generationShape,
  imageResolutions,
  models,
  routing,
  seed,
  speechFormats,
  textOutput,
  videoResolutions,
  waitSeconds,
} from "./schemas.js";

/**
 * The Polyforge MCP tools, over any PolyforgeApi: this package's (HTTP, key or wallet) and the
 * API's own (in process for /mcp; HTTP with a key for `polyforge mcp`), so there is one set.
 * Generating submits, then polls with exponential backoff while telling the client its
 * progress; a generation that outlives the wait comes back with its id and status, for
 * get_generation later. Refusals (the API's, or a spending cap's) are tool errors carrying a
 * stable code.
 */

type ToolExtra = {
  _meta?: { progressToken?: string | number };
  sendNotification: (n: {
    method: "notifications/progress";
    params: { progressToken: string | number; progress: number; total: number; message?: string };
  }) => Promise<void>;
  signal: AbortSignal;
};

const generating = {
  readOnlyHint: false,
  destructiveHint: false,
  idempotentHint: false,
  openWorldHint: true,
};
const reading = { readOnlyHint: true, openWorldHint: false };

const urlOf = (r: GenerationJson["results"][number]) =>
  r.imageUrl ?? r.videoUrl ?? r.audioUrl ?? null;

function summary(g: GenerationJson, done: boolean, payment?: PaymentJson) {
  return {
    generationId: g.generationId,
    status: g.status,
    done,
    cost: g.cost,
    results: g.results.map((r) => ({
      model: r.model,
      status: r.status,
      url: urlOf(r),
      expiredAt: r.expiredAt ? new Date(r.expiredAt).toISOString() : null,
      fps: r.fps,
      progress: r.progress ?? null,
      cost: r.cost,
      routing: r.routing ?? null,
      error: r.error ?? null,
    })),
    ...(payment && { payment }),
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
  /**
   * Told of a failure that is not an API refusal (a bug): the tool answers internal_error
   * without its details, which can name the server's internals.
   */
  onInternalError?: (err: unknown) => void;
}

/** The Polyforge MCP server: every tool over `api`. */
export function createMcpServer(api: PolyforgeApi, options: ToolOptions = {}): McpServer {
  const server = new McpServer({ name: "polyforge", version: "0.1.0" });
  registerTools(server, api, options);
  return server;
}

/** Registers the tools on `server`, in the order clients list them. */
export function registerTools(
  server: McpServer,
  api: PolyforgeApi,
  options: ToolOptions = {},
): void {
  const firstPoll = options.firstPollMs ?? 500;
  const maxPoll = options.maxPollMs ?? 5_000;

  /** An API refusal as a tool error carrying the API's code; anything else stays internal. */
  const toolError = (err: unknown): CallToolResult => {
    if (!(err instanceof ApiError)) options.onInternalError?.(err);
    const error =
      err instanceof ApiError
        ? { code: err.code, message: err.message }
        : { code: "internal_error", message: "The tool failed unexpectedly." };
    return { isError: true, content: [{ type: "text", text: `${error.code}: ${error.message}` }] };
  };

  /** A tool's answer: its structured content with a text copy, or the refusal as an error. */
  async function answer(work: () => Promise<Record<string, unknown>>): Promise<CallToolResult> {
    try {
      const structured = await work();
      return {
        content: [{ type: "text", text: JSON.stringify(structured) }],
        structuredContent: structured,
      };
    } catch (err) {
      return toolError(err);
    }
  }

  async function generateAndWait(body: Record<string, unknown>, wait: number, extra: ToolExtra) {
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
      const { generationId, payment, running } = await api.generate(body, { wait: wait > 0 });
      await report(0, `submitted ${generationId}`);
      const deadline = Date.now() + wait * 1000;
      // The client going away and the API process shutting down both end the wait, not the work.
      const quit = api.stopping ? AbortSignal.any([extra.signal, api.stopping]) : extra.signal;
      // Run by the API itself: its end is the first moment to look, so no poll waits on a timer.
      if (running) {
        const settled = new AbortController();
        const stop = () => settled.abort();
        void running.then(stop, stop);
        const until = AbortSignal.any([quit, settled.signal]);
        await sleep(Math.max(0, deadline - Date.now()), undefined, { signal: until }).catch(
          () => undefined,
        );
      }
      let delay = firstPoll;
      let last: GenerationJson | undefined;
      for (;;) {
        // A poll refused by the rate limit is skipped, not fatal, once there is a last answer.
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
          return summary(generation, done, payment);
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
        duration: z
          .number()
          .int()
          .positive()
          .max(60)
          .describe("Seconds; one of the model's durations."),
        fps: z
          .number()
          .int()
          .positive()
          .optional()
          .describe(
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
        seed,
        routing,
        waitSeconds: waitSeconds(300, "Music and sound effects: how long to wait for the clip."),
      },
      outputSchema: {
        kind: z.enum(["speech", "clip"]),
        cost: credits,
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
        payment: generationShape.payment,
      },
      annotations: generating,
    },
    async ({ model, prompt, voice, format, duration, seed, routing, waitSeconds }, extra) => {
      let speechModel: { voices: readonly string[] } | undefined;
      try {
        const found = (await api.models()).find(
          (m) => m.type === "audio" && (m.id === model || m.aliases?.includes(model)),
        );
        if (found?.kind === "speech") speechModel = { voices: found.capabilities?.voices ?? [] };
      } catch (err) {
        return toolError(err);
      }
      if (!speechModel) {
        const clip = await generateAndWait(
          {
            prompt,
            models: [model],
            mediaType: "audio",
            ...(duration !== undefined && { duration }),
            ...(seed !== undefined && { seed }),
            ...(routing && { routing }),
          },
          waitSeconds,
          extra as ToolExtra,
        );
        if (clip.isError || !clip.structuredContent) return clip;
        const structured = clip.structuredContent as { cost: unknown; payment?: unknown };
        const answered = {
          kind: "clip",
          cost: structured.cost,
          clip: structured,
          ...(structured.payment !== undefined && { payment: structured.payment }),
        };
        return {
          content: [{ type: "text", text: JSON.stringify(answered) }],
          structuredContent: answered,
        };
      }
      let audio = "";
      let mimeType = "";
      const voices = speechModel.voices;
      const result = await answer(async () => {
        const speech = await api.speech(
          {
            model,
            input: prompt,
            ...((voice ?? voices[0]) && { voice: voice ?? voices[0] }),
            ...(format && { response_format: format }),
            ...(routing && { routing }),
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
          ...(speech.payment && { payment: speech.payment }),
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
      description:
        api.mode === "wallet"
          ? "The status and results of earlier generations, by id (those this server paid for since it started: each is read with its own access token)."
          : "The status and results of earlier generations, by id.",
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

  server.registerTool(
    "generate_text",
    {
      title: "Generate text",
      description:
        "Ask a text model (e.g. gpt-5.5, claude-sonnet-5, gemini-3.5-flash, deepseek-v4-pro; list_models with mediaType text shows them) for a reply: a prompt, or a whole conversation as messages. Billed by the tokens used, in credits; returns the reply, its token usage, cost and which upstream served it.",
      inputSchema: {
        model: z.string().min(1).describe("A text model's id."),
        prompt: z.string().min(1).optional().describe("The user's message, when not `messages`."),
        system: z.string().min(1).optional().describe("Instructions placed before the prompt."),
        messages: z
          .array(chatMessage)
          .min(1)
          .optional()
          .describe("A conversation in OpenAI's chat shape, instead of prompt and system."),
        maxTokens: z.number().int().min(1).optional().describe("The reply's token limit."),
        temperature: z.number().min(0).max(2).optional(),
        routing,
      },
      outputSchema: textOutput,
      annotations: generating,
    },
    async ({ model, prompt, system, messages, maxTokens, temperature, routing }, extra) =>
      answer(async () => {
        const conversation = messages ?? [
          ...(system ? [{ role: "system" as const, content: system }] : []),
          { role: "user" as const, content: prompt ?? "" },
        ];
        const reply = await api.chat(
          {
            model,
            messages: conversation,
            ...(maxTokens !== undefined && { max_tokens: maxTokens }),
            ...(temperature !== undefined && { temperature }),
            ...(routing && { routing }),
          },
          (extra as ToolExtra).signal,
        );
        const choice = reply.choices[0];
        return {
          text: choice?.message.content ?? "",
          model: reply.model,
          finishReason: choice?.finish_reason ?? "stop",
          usage: {
            promptTokens: reply.usage.prompt_tokens,
            completionTokens: reply.usage.completion_tokens,
          },
          cost: reply.cost,
          routing: reply.routing,
          ...(reply.payment && { payment: reply.payment }),
        };
      }),
  );

  server.registerTool(
    "list_models",
    {
      title: "List models",
      description:
        "The models you can use, of four types: image and video (capabilities: resolutions, aspect ratios, durations, frame rates; limits: the longest prompt each takes; a price table), text (context length, most output tokens, image input; credits per million input and output tokens) and audio (kind speech, transcription, music or sound_effect; voices, formats or durations; credits per million characters, per minute, or per clip, second or started minute). Prices in credits.",
      inputSchema: { mediaType: z.enum(["image", "video", "text", "audio"]).optional() },
      outputSchema: { models: z.array(z.record(z.string(), z.unknown())) },
      annotations: reading,
    },
    async ({ mediaType }) =>
      answer(async () => ({
        models: (await api.models()).filter((m) => !mediaType || m.type === mediaType),
      })),
  );

  const spending = api.spending;
  if (spending) {
    server.registerTool(
      "get_balance",
      {
        title: "Get spending",
        description:
          "With a wallet (no API key), each call is paid in USDC as it is made: what this server has paid today (UTC, since it started) and its caps, in dollars of USDC.",
        inputSchema: {},
        outputSchema: {
          mode: z.literal("wallet"),
          day: z.string(),
          paidToday: z.string(),
          maxPerCall: z.string(),
          maxPerDay: z.string(),
        },
        annotations: reading,
      },
      async () =>
        answer(async () => {
          const t = spending();
          return {
            mode: "wallet",
            day: t.day,
            paidToday: unitsToDollars(t.spent),
            maxPerCall: unitsToDollars(t.maxPerCall),
            maxPerDay: unitsToDollars(t.maxPerDay),
          };
        }),
    );
  } else {
    server.registerTool(
      "get_balance",
      {
        title: "Get balance",
        description:
          "Your credit balance (1 credit = $0.01), credits held by work in flight, and your membership tier.",
        inputSchema: {},
        outputSchema: {
          creditBalance: z.number(),
          heldCredits: z.number(),
          earnings: z.number(),
          membershipTier: z.string(),
          network: z.string(),
        },
        annotations: reading,
      },
      async () => answer(async () => ({ ...(await api.balance()) })),
    );
  }
}
