import { z } from "zod";
import { commonInput, download, jsonHeaders, parseAnswer, poll, requestJson } from "./http.js";
import { type Provider, ProviderError } from "./types.js";
import { resumeOrSubmit } from "./upstream-job.js";

/** fal's queue API: submit, poll the status URL, read the result from the response URL. */

const submitted = z.object({ request_id: z.string(), status_url: z.url(), response_url: z.url() });
const status = z.object({ status: z.enum(["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]) });
const result = z.object({
  images: z.array(z.object({ url: z.url() })).optional(),
  video: z.object({ url: z.url() }).optional(),
});

export const falProvider: Provider = {
  async generate(task, channel, signal, _onProgress, job) {
    const headers = jsonHeaders(`Key ${channel.apiKey ?? ""}`);
    return resumeOrSubmit(
      job,
      submitted,
      async () => {
        const input = {
          ...commonInput(task),
          ...(task.referenceImageUrls.length ? { image_urls: task.referenceImageUrls } : {}),
        };
        const answer = await requestJson(
          `${channel.baseUrl}/${task.upstreamModel}`,
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
        const done = parseAnswer(
          result,
          await requestJson(queued.response_url, { headers }, signal),
          "a result",
        );
        const url = task.mediaType === "video" ? done.video?.url : done.images?.[0]?.url;
        if (!url)
          throw new ProviderError(
            "retryable",
            "malformed_response",
            "The upstream returned no output.",
          );
        return download(url, signal);
      },
    );
  },
};
