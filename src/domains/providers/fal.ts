import { z } from "zod";
import { download, malformed, poll, requestJson } from "./http.js";
import { type Provider, ProviderError } from "./types.js";

/** fal's queue API: submit, poll the status URL, read the result from the response URL. */

const submitted = z.object({ request_id: z.string(), status_url: z.url(), response_url: z.url() });
type Queued = z.infer<typeof submitted>;
const status = z.object({ status: z.enum(["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]) });
const result = z.object({
  images: z.array(z.object({ url: z.url() })).optional(),
  video: z.object({ url: z.url() }).optional(),
});

export const falProvider: Provider = {
  async generate(task, channel, signal, _onProgress, job) {
    const headers = {
      "content-type": "application/json",
      authorization: `Key ${channel.apiKey ?? ""}`,
    };
    const finish = async (queued: Queued) => {
      await poll(async () => {
        const s = status.safeParse(await requestJson(queued.status_url, { headers }, signal));
        if (!s.success) throw malformed("a queue status");
        return s.data.status === "COMPLETED" ? true : undefined;
      }, signal);
      const done = result.safeParse(await requestJson(queued.response_url, { headers }, signal));
      if (!done.success) throw malformed("a result");
      const url = task.mediaType === "video" ? done.data.video?.url : done.data.images?.[0]?.url;
      if (!url)
        throw new ProviderError(
          "retryable",
          "malformed_response",
          "The upstream returned no output.",
        );
      return download(url, signal);
    };

    const resumed = submitted.safeParse(job?.resume);
    if (resumed.success) {
      try {
        return await finish(resumed.data);
      } catch (err) {
        // fal no longer knows the request (a 4xx): only then is it submitted again.
        if (!(err instanceof ProviderError && err.kind === "channel")) throw err;
      }
    }
    const input = {
      prompt: task.prompt,
      aspect_ratio: task.aspectRatio,
      seed: task.seed,
      ...(task.negativePrompt ? { negative_prompt: task.negativePrompt } : {}),
      ...(task.duration ? { duration: task.duration } : {}),
      ...(task.fps ? { fps: task.fps } : {}),
      ...(task.referenceImageUrls.length ? { image_urls: task.referenceImageUrls } : {}),
    };
    const queued = submitted.safeParse(
      await requestJson(
        `${channel.baseUrl}/${task.upstreamModel}`,
        { method: "POST", headers, body: JSON.stringify(input) },
        signal,
      ),
    );
    if (!queued.success) throw malformed("request_id, status_url and response_url");
    await job?.submitted(queued.data);
    return finish(queued.data);
  },
};
