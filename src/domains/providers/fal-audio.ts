import { z } from "zod";
import type { AudioGenerationProvider } from "./audio-types.js";
import { download, jsonHeaders, malformed, parseAnswer, poll, requestJson } from "./http.js";
import { resumeOrSubmit } from "./upstream-job.js";

/**
 * fal's queue for music and sound-effect models: the same submit, status and response URLs as
 * fal.ts, with a prompt and a duration in, and `audio.url` (or `audio_file.url`) out.
 */

const submitted = z.object({ request_id: z.string(), status_url: z.url(), response_url: z.url() });
const status = z.object({ status: z.enum(["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]) });
const file = z.object({ url: z.url() });
const result = z.object({ audio: file.optional(), audio_file: file.optional() });

export const falAudioProvider: AudioGenerationProvider = {
  async generateAudio(task, channel, signal, job) {
    const headers = jsonHeaders(`Key ${channel.apiKey ?? ""}`);
    return resumeOrSubmit(
      job,
      submitted,
      async () => {
        const answer = await requestJson(
          `${channel.baseUrl}/${task.upstreamModel}`,
          {
            method: "POST",
            headers,
            body: JSON.stringify({ prompt: task.prompt, duration: task.duration, seed: task.seed }),
          },
          signal,
        );
        return parseAnswer(submitted, answer, "request_id, status_url and response_url");
      },
      async (queued) => {
        await poll(async () => {
          const s = parseAnswer(
            status,
            await requestJson(queued.status_url, { headers }, signal),
            "a queue status",
          );
          return s.status === "COMPLETED" ? true : undefined;
        }, signal);
        const done = parseAnswer(
          result,
          await requestJson(queued.response_url, { headers }, signal),
          "a result",
        );
        const url = done.audio?.url ?? done.audio_file?.url;
        if (!url) throw malformed("audio.url");
        return download(url, signal);
      },
    );
  },
};
