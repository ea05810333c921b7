import { z } from "zod";
import { runFalQueue } from "./fal-queue.js";
import { commonInput, download } from "./http.js";
import { type Provider, ProviderError } from "./types.js";

/** fal's queue API for images and video: their input in, `images[0].url` or `video.url` out. */

const result = z.object({
  images: z.array(z.object({ url: z.url() })).optional(),
  video: z.object({ url: z.url() }).optional(),
});

export const falProvider: Provider = {
  async generate(task, channel, signal, _onProgress, job) {
    const input = {
      ...commonInput(task),
      ...(task.referenceImageUrls.length ? { image_urls: task.referenceImageUrls } : {}),
    };
    const done = await runFalQueue(channel, task.upstreamModel, input, result, signal, job);
    const url = task.mediaType === "video" ? done.video?.url : done.images?.[0]?.url;
    if (!url)
      throw new ProviderError(
        "retryable",
        "malformed_response",
        "The upstream returned no output.",
      );
    return download(url, signal);
  },
};
