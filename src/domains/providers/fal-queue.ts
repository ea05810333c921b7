import { z } from "zod";
import { jsonHeaders, parseAnswer, poll, requestJson } from "./http.js";
import type { ChannelEndpoint, UpstreamJob } from "./types.js";
import { resumeOrSubmit } from "./upstream-job.js";

/**
 * fal's queue API, for every fal adapter (images and video in fal.ts, audio in fal-audio.ts):
 * submit the input to the model, poll its status URL until COMPLETED, and read the result from
 * its response URL, parsed with `result`. The submitted request is recorded on `job`, so a run
 * after a crash polls the same request instead of paying for a new one.
 */

const submitted = z.object({ request_id: z.string(), status_url: z.url(), response_url: z.url() });
const status = z.object({ status: z.enum(["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]) });

export function runFalQueue<R>(
  channel: ChannelEndpoint,
  upstreamModel: string,
  input: Record<string, unknown>,
  result: z.ZodType<R>,
  signal: AbortSignal,
  job: UpstreamJob | undefined,
): Promise<R> {
  const headers = jsonHeaders(`Key ${channel.apiKey ?? ""}`);
  return resumeOrSubmit(
    job,
    submitted,
    async () => {
      const answer = await requestJson(
        `${channel.baseUrl}/${upstreamModel}`,
        { method: "POST", headers, body: JSON.stringify(input) },
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
      return parseAnswer(
        result,
        await requestJson(queued.response_url, { headers }, signal),
        "a result",
      );
    },
  );
}
