import { z } from "zod";
import type { AudioGenerationProvider } from "./audio-types.js";
import { runFalQueue } from "./fal-queue.js";
import { download, malformed } from "./http.js";

/**
 * fal's queue for music and sound-effect models (fal-queue.ts), with a prompt and a duration in,
 * and `audio.url` (or `audio_file.url`) out.
 */

const file = z.object({ url: z.url() });
const result = z.object({ audio: file.optional(), audio_file: file.optional() });

export const falAudioProvider: AudioGenerationProvider = {
  async generateAudio(task, channel, signal, job) {
    const input = { prompt: task.prompt, duration: task.duration, seed: task.seed };
    const done = await runFalQueue(channel, task.upstreamModel, input, result, signal, job);
    const url = done.audio?.url ?? done.audio_file?.url;
    if (!url) throw malformed("audio.url");
    return download(url, signal);
  },
};
