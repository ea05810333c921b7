import { z } from "zod";
import { route } from "../../http/openapi/contract.js";
import { creditsJson } from "../../lib/credits.js";
import { speechFormats } from "../catalog/audio-models.js";
import { routingPreferences } from "../routing/preferences.js";

/**
 * The OpenAI-shaped audio doors (issue 20, item 4): speech answers the audio bytes, a
 * transcription `{ text }`. Both wait for the upstream, like the OpenAI images door, and both are
 * billed exactly what they quote before the call: speech by character, transcription by second.
 */

/** OpenAI's own cap on a speech request's input; a model may take fewer (see the catalog). */
export const MAX_SPEECH_INPUT = 4_096;

/** The content type each asked format is answered with (the sandbox answers WAV, and says so). */
export const speechContentTypes = {
  mp3: "audio/mpeg",
  wav: "audio/wav",
  opus: "audio/ogg",
  flac: "audio/flac",
  pcm: "audio/pcm",
} as const;

export const speechRequest = z
  .object({
    model: z.string().min(1).max(200),
    input: z.string().min(1, "input must not be empty"),
    voice: z.string().min(1).max(100),
    response_format: z.enum(speechFormats).default("mp3"),
    speed: z.number().min(0.25).max(4).optional(),
    instructions: z.string().max(4_096).optional(),
    routing: routingPreferences.optional(),
  })
  // OpenAI's `stream_format: "sse"` (or any field not named here) is refused, not dropped: its
  // SDK would read the audio bytes as events.
  .strict()
  .meta({ id: "SpeechRequest" });

export const transcriptionFormats = ["json", "text"] as const;

/** The multipart form's text fields (multer reads them as strings). */
export const transcriptionFields = z.object({
  model: z.string().min(1).max(200),
  language: z
    .string()
    .regex(/^[a-z]{2,3}(-[A-Za-z]{2,4})?$/, "an ISO-639 language code such as en")
    .optional(),
  prompt: z.string().max(4_096).optional(),
  response_format: z.enum(transcriptionFormats).default("json"),
  temperature: z.coerce.number().min(0).max(1).optional(),
  // A form field carries text: the routing preferences as JSON.
  routing: z
    .preprocess((value) => {
      if (typeof value !== "string") return value;
      try {
        return JSON.parse(value);
      } catch {
        return value;
      }
    }, routingPreferences)
    .optional()
    .describe("Routing preferences as a JSON text, as /v1/generate's `routing` object."),
});

/** The whole form, for the document: the file beside the fields. */
export const transcriptionForm = transcriptionFields
  .extend({
    // A form field is text: documented as what is sent, JSON text of the routing object.
    routing: z
      .string()
      .optional()
      .describe(
        'Routing preferences as JSON text: the `routing` object of /v1/generate, e.g. {"order":["openai-main"]}.',
      ),
    file: z
      .file()
      .describe(
        "The audio: WAV or MP3, whose length is read from its header (it is what is billed), at most 25 MB.",
      ),
  })
  .meta({ id: "TranscriptionRequest" });

export const transcription = z
  .object({
    text: z.string(),
    usage: z
      .object({
        type: z.literal("duration"),
        seconds: z.number().int().describe("The audio's length, rounded up to the second."),
        cost: creditsJson("What the transcription was charged, in credits."),
      })
      .describe("OpenAI's duration usage, with its cost in credits."),
    routing: z
      .object({
        upstream: z.string().nullable(),
        failover: z.boolean(),
        preferences: routingPreferences.optional(),
      })
      .describe(
        "Which upstream channel served it, whether it was a failover, and the routing asked.",
      ),
  })
  .meta({ id: "Transcription" });

const chargedHeaders = {
  "X-Credits-Charged": {
    description: "Credits charged for this call (the exact quote), at most 4 decimals.",
    required: true,
  },
  "X-Upstream": { description: "The upstream channel that served the call.", required: true },
  "X-Failover": { description: "true when a channel after the first served it." },
};

export const audioContracts = {
  createSpeech: route({
    method: "post",
    path: "/v1/audio/speech",
    operationId: "createSpeech",
    summary: "Speech from text (OpenAI-compatible)",
    description:
      "Billed per character of `input` (Unicode code points), quoted exactly before the call; a failed call is refunded in full. Answers the audio bytes. An `Idempotency-Key` header makes a retry replay the first answer without a second charge. Without an API key it is paid per call with x402, at the exact quote; a failed call leaves the credits on the paying wallet's account. The sandbox (test mode) answers WAV whatever format is asked, with content type audio/wav.",
    tag: "Audio",
    auth: ["apiKey", "x402"],
    rateLimit: "generate",
    body: {
      schema: speechRequest,
      example: { model: "tts-1", input: "Hello from Polyforge.", voice: "alloy" },
    },
    responses: {
      200: {
        description: "The audio.",
        schema: z.string().meta({ format: "binary" }),
        contentTypes: Object.values(speechContentTypes),
        headers: chargedHeaders,
      },
    },
    errors: [
      "invalid_model",
      "model_media_mismatch",
      "prompt_too_long",
      "invalid_voice",
      "invalid_audio_format",
      "insufficient_credits",
      "key_limit_exceeded",
      "model_unavailable",
      "unknown_channel",
      "no_channel_left",
      "generation_failed",
      "idempotency_key_reused",
      "idempotency_key_in_flight",
    ],
  }),
  createTranscription: route({
    method: "post",
    path: "/v1/audio/transcriptions",
    operationId: "createTranscription",
    summary: "Text from audio (OpenAI-compatible)",
    description:
      "Billed per second of audio, read from the file's header (WAV or MP3; a file whose length cannot be read is refused before anything is charged), rounded up to the second and quoted exactly before the call; a failed call is refunded in full. An `Idempotency-Key` header makes a retry replay the first answer without a second charge. It takes an API key: a multipart body cannot be quoted before it is read, so x402's pay-per-call is offered on speech only.",
    tag: "Audio",
    auth: ["apiKey"],
    rateLimit: "generate",
    body: { schema: transcriptionForm, contentType: "multipart/form-data" },
    responses: {
      200: {
        description: "The transcription: JSON by default, plain text with response_format=text.",
        schema: transcription,
        contentTypes: ["application/json", "text/plain"],
        headers: chargedHeaders,
      },
    },
    errors: [
      "invalid_model",
      "model_media_mismatch",
      "payload_too_large",
      "invalid_audio",
      "insufficient_credits",
      "key_limit_exceeded",
      "model_unavailable",
      "unknown_channel",
      "no_channel_left",
      "generation_failed",
      "idempotency_key_reused",
      "idempotency_key_in_flight",
    ],
  }),
};
