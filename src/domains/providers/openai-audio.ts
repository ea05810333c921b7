import { z } from "zod";
import type { SpeechProvider, TranscriptionProvider } from "./audio-types.js";
import { failure, jsonHeaders, malformed, parseAnswer, requestJson } from "./http.js";

/**
 * OpenAI audio: POST /v1/audio/speech (JSON in, audio bytes out) and
 * POST /v1/audio/transcriptions (multipart `file` and `model`, JSON `{ text }` out).
 */

const SPEECH_TYPES: Record<string, string> = {
  mp3: "audio/mpeg",
  wav: "audio/wav",
  opus: "audio/ogg",
  flac: "audio/flac",
  pcm: "audio/pcm",
};

const NOT_AUDIO = /^(application\/(json|problem\+json|xml)|text\/)/;

export const openaiSpeechProvider: SpeechProvider = {
  async speak(task, channel, signal) {
    const res = await fetch(`${channel.baseUrl}/v1/audio/speech`, {
      method: "POST",
      headers: jsonHeaders(`Bearer ${channel.apiKey ?? ""}`),
      body: JSON.stringify({
        model: task.upstreamModel,
        input: task.input,
        voice: task.voice,
        response_format: task.format,
        ...(task.speed !== undefined && { speed: task.speed }),
        ...(task.instructions !== undefined && { instructions: task.instructions }),
      }),
      signal,
    });
    if (!res.ok) throw await failure(res);
    const sent = res.headers.get("content-type")?.split(";")[0]?.trim().toLowerCase();
    const bytes = Buffer.from(await res.arrayBuffer());
    // A 200 that is JSON, text or HTML (a proxy's page, an error in the wrong status) is no audio.
    if (bytes.length === 0 || (sent !== undefined && NOT_AUDIO.test(sent))) {
      throw malformed("audio bytes");
    }
    return {
      bytes,
      contentType: sent?.startsWith("audio/")
        ? sent
        : (SPEECH_TYPES[task.format] ?? "application/octet-stream"),
    };
  },
};

const transcription = z.object({ text: z.string() });

export const openaiTranscriptionProvider: TranscriptionProvider = {
  async transcribe(task, channel, signal) {
    const form = new FormData();
    form.append("model", task.upstreamModel);
    form.append("response_format", "json");
    if (task.language !== undefined) form.append("language", task.language);
    if (task.prompt !== undefined) form.append("prompt", task.prompt);
    form.append(
      "file",
      new Blob([new Uint8Array(task.file)], { type: task.contentType }),
      task.filename,
    );
    const answer = await requestJson(
      `${channel.baseUrl}/v1/audio/transcriptions`,
      // No content-type of our own: fetch writes the multipart boundary into it.
      { method: "POST", headers: { authorization: `Bearer ${channel.apiKey ?? ""}` }, body: form },
      signal,
    );
    return { text: parseAnswer(transcription, answer, "text").text };
  },
};
