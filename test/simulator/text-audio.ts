import type express from "express";
import multer from "multer";
import { audioSeconds } from "../../src/domains/providers/audio-duration.js";
import { makeWav, wavComment } from "../../src/domains/providers/wav.js";

/**
 * The text and audio APIs of the upstream simulator (mounted by upstream.ts), in their wire
 * formats:
 * - OpenAI chat:  POST /openai/v1/chat/completions, plain (`chat.completion`) or streamed
 *                 (`chat.completion.chunk` SSE, usage chunk with stream_options.include_usage,
 *                 `[DONE]`)
 * - Anthropic:    POST /anthropic/v1/messages, plain (`message`) or streamed (message_start …
 *                 message_stop)
 * - OpenAI audio: POST /openai/v1/audio/speech (WAV bytes, about 15 characters a second) and
 *                 POST /openai/v1/audio/transcriptions (multipart `file`, `model`)
 * Stream faults, beside the shared ones: `streamErrorFirst` (an error event before any text),
 * `streamError`, `streamHang` and `streamCut` (after STREAM_CHUNKS_BEFORE_FAULT text chunks:
 * an error event, silence, a closed connection), `malformedChunk` (a chunk that is not JSON).
 */

export const streamFaults = [
  "streamErrorFirst",
  "streamError",
  "streamHang",
  "streamCut",
  "malformedChunk",
] as const;
export type StreamFault = (typeof streamFaults)[number];

/** Text chunks sent before a mid-stream fault strikes. */
export const STREAM_CHUNKS_BEFORE_FAULT = 2;

/** Characters of speech a second (a brisk reading pace), for speech's length. */
export const SPEECH_CHARACTERS_PER_SECOND = 15;

export interface TextAudioHooks {
  record(call: {
    api: string;
    model: string;
    prompt: string;
    input?: Record<string, unknown>;
  }): void;
  /** Applies the next shared fault for `api`: false when it answered (or hangs) instead. */
  applyFault(res: express.Response, api: "openai" | "anthropic"): Promise<StreamFault | boolean>;
}

interface ChatBody {
  model?: string;
  messages?: Array<{ role?: string; content?: unknown }>;
  system?: unknown;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  max_tokens?: number;
  max_completion_tokens?: number;
}

function textOfContent(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content.map((p) => (typeof p?.text === "string" ? p.text : "")).join("");
  }
  return "";
}

/** The simulated reply: the last user turn's words, echoed, within max tokens (a word each). */
function replyOf(body: ChatBody): { words: string[]; promptTokens: number; capped: boolean } {
  const turns = body.messages ?? [];
  const prompt = [textOfContent(body.system), ...turns.map((m) => textOfContent(m.content))].join(
    " ",
  );
  const last = [...turns].reverse().find((m) => m.role === "user");
  const words = ["Simulated", "reply", "to:", ...textOfContent(last?.content).split(/\s+/)].filter(
    Boolean,
  );
  const limit = body.max_completion_tokens ?? body.max_tokens ?? 1_000;
  const capped = words.length > limit;
  return {
    words: words.slice(0, limit).map((w, i) => (i ? ` ${w}` : w)),
    promptTokens: prompt.split(/\s+/).filter(Boolean).length + 3 * turns.length,
    capped,
  };
}

function startSse(res: express.Response) {
  res.status(200).set({
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
  res.flushHeaders();
}

/** Writes the events in order, striking `fault` at its point; resolves once done. */
async function stream(
  res: express.Response,
  parts: { head: string[]; deltas: string[]; tail: string[]; error: string; malformed: string },
  fault: StreamFault | undefined,
) {
  startSse(res);
  const write = (s: string) => res.write(s);
  parts.head.forEach(write);
  if (fault === "streamErrorFirst") return void res.end(parts.error);
  if (fault === "malformedChunk") return void res.end(parts.malformed);
  for (const [i, delta] of parts.deltas.entries()) {
    if (i === STREAM_CHUNKS_BEFORE_FAULT) {
      if (fault === "streamError") return void res.end(parts.error);
      if (fault === "streamCut") return void res.socket?.destroy();
      if (fault === "streamHang") return; // never another byte
    }
    write(delta);
    // A tick between chunks, so a client sees them as separate reads.
    await new Promise((r) => setImmediate(r));
  }
  parts.tail.forEach(write);
  res.end();
}

export function mountTextAudio(app: express.Express, hooks: TextAudioHooks): void {
  app.post("/openai/v1/chat/completions", async (req, res) => {
    const body = req.body as ChatBody;
    const { words, promptTokens, capped } = replyOf(body);
    hooks.record({
      api: "openai",
      model: String(body.model),
      prompt: words.join(""),
      input: req.body,
    });
    const fault = await hooks.applyFault(res, "openai");
    if (fault === false) return;
    const id = `chatcmpl-sim${Date.now()}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: words.length,
      total_tokens: promptTokens + words.length,
    };
    const finish_reason = capped ? "length" : "stop";
    if (!body.stream) {
      return void res.json({
        id,
        object: "chat.completion",
        created,
        model: body.model,
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: words.join(""), refusal: null },
            logprobs: null,
            finish_reason,
          },
        ],
        usage,
      });
    }
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: body.model, choices, ...(body.stream_options?.include_usage && { usage: null }), ...extra })}\n\n`;
    await stream(
      res,
      {
        head: [
          chunk([{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }]),
        ],
        deltas: words.map((w) => chunk([{ index: 0, delta: { content: w }, finish_reason: null }])),
        tail: [
          chunk([{ index: 0, delta: {}, finish_reason }]),
          ...(body.stream_options?.include_usage ? [chunk([], { usage })] : []),
          "data: [DONE]\n\n",
        ],
        error: `data: ${JSON.stringify({ error: { message: "The server had an error while processing your request.", type: "server_error", param: null, code: null } })}\n\n`,
        malformed: 'data: {"id": "chatcmpl-sim", "choices": [\n\n',
      },
      fault === true ? undefined : fault,
    );
  });

  app.post("/anthropic/v1/messages", async (req, res) => {
    const body = req.body as ChatBody;
    const { words, promptTokens, capped } = replyOf(body);
    hooks.record({
      api: "anthropic",
      model: String(body.model),
      prompt: words.join(""),
      input: req.body,
    });
    if (!req.headers["x-api-key"] || !req.headers["anthropic-version"]) {
      return void res.status(401).json({
        type: "error",
        error: { type: "authentication_error", message: "invalid x-api-key" },
      });
    }
    const fault = await hooks.applyFault(res, "anthropic");
    if (fault === false) return;
    const id = `msg_sim${Date.now()}`;
    const stop_reason = capped ? "max_tokens" : "end_turn";
    if (!body.stream) {
      return void res.json({
        id,
        type: "message",
        role: "assistant",
        model: body.model,
        content: [{ type: "text", text: words.join("") }],
        stop_reason,
        stop_sequence: null,
        usage: { input_tokens: promptTokens, output_tokens: words.length },
      });
    }
    const event = (type: string, data: Record<string, unknown>) =>
      `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
    await stream(
      res,
      {
        head: [
          event("message_start", {
            message: {
              id,
              type: "message",
              role: "assistant",
              content: [],
              model: body.model,
              stop_reason: null,
              stop_sequence: null,
              usage: { input_tokens: promptTokens, output_tokens: 1 },
            },
          }),
          event("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
          event("ping", {}),
        ],
        deltas: words.map((w) =>
          event("content_block_delta", { index: 0, delta: { type: "text_delta", text: w } }),
        ),
        tail: [
          event("content_block_stop", { index: 0 }),
          event("message_delta", {
            delta: { stop_reason, stop_sequence: null },
            usage: { output_tokens: words.length },
          }),
          event("message_stop", {}),
        ],
        error: event("error", { error: { type: "overloaded_error", message: "Overloaded" } }),
        malformed: "event: content_block_delta\ndata: {not json\n\n",
      },
      fault === true ? undefined : fault,
    );
  });

  app.post("/openai/v1/audio/speech", async (req, res) => {
    const input = String(req.body?.input ?? "");
    hooks.record({ api: "openai", model: String(req.body?.model), prompt: input, input: req.body });
    if ((await hooks.applyFault(res, "openai")) === false) return;
    const seconds = Math.max(1, Math.ceil([...input].length / SPEECH_CHARACTERS_PER_SECOND));
    // WAV whatever the format asked: the simulator has no MP3 or Opus encoder.
    res
      .type("audio/wav")
      .send(makeWav({ seconds, seed: `${req.body?.voice}\n${input}`, comment: input }));
  });

  const upload = multer({
    storage: multer.memoryStorage(),
    limits: { fileSize: 25 * 1024 * 1024 },
  });
  app.post("/openai/v1/audio/transcriptions", upload.single("file"), async (req, res) => {
    const model = String(req.body?.model);
    hooks.record({ api: "openai", model, prompt: "" });
    if ((await hooks.applyFault(res, "openai")) === false) return;
    const file = req.file?.buffer;
    // WAV or MP3, as OpenAI takes them (and more); anything else is its 400.
    const seconds = file && audioSeconds(file);
    if (!file || seconds === undefined) {
      return void res.status(400).json({
        error: {
          message: "Invalid file format.",
          type: "invalid_request_error",
          param: "file",
          code: null,
        },
      });
    }
    const text = wavComment(file) ?? `Simulated transcription of ${seconds.toFixed(1)} seconds.`;
    if (req.body?.response_format === "text") return void res.type("text/plain").send(text);
    if (req.body?.response_format === "verbose_json") {
      return void res.json({ task: "transcribe", language: "english", duration: seconds, text });
    }
    res.json({ text, usage: { type: "duration", seconds: Math.ceil(seconds) } });
  });
}

/** fal model ids of audio models (music, sound effects, speech): their results are WAV. */
export const isAudioModel = (model: string): boolean =>
  /audio|music|sound|tts|elevenlabs|beatoven/.test(model);

/** A fal audio model's output: `duration` seconds (speech: from its text), as WAV. */
export function falAudio(model: string, input: Record<string, unknown> | undefined): Buffer {
  const text = String(input?.text ?? input?.prompt ?? "");
  const duration = Number(input?.duration ?? input?.seconds_total ?? 0);
  const seconds =
    duration > 0
      ? duration
      : Math.max(1, Math.ceil([...text].length / SPEECH_CHARACTERS_PER_SECOND));
  return makeWav({ seconds, seed: `${model}\n${text}`, comment: text, sampleRate: 8_000 });
}
