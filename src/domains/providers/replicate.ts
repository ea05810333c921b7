import { z } from "zod";
import { CONTENT_POLICY, download, malformed, poll, requestJson } from "./http.js";
import { type Provider, ProviderError } from "./types.js";

/** Replicate's predictions API: create a prediction for a model, poll it until it settles. */

const prediction = z.object({
  id: z.string(),
  status: z.enum(["starting", "processing", "succeeded", "failed", "canceled"]),
  output: z.union([z.url(), z.array(z.url()), z.null()]).optional(),
  error: z.string().nullable().optional(),
  urls: z.object({ get: z.url() }),
});

export const replicateProvider: Provider = {
  async generate(task, channel, signal) {
    const headers = {
      "content-type": "application/json",
      authorization: `Bearer ${channel.apiKey ?? ""}`,
    };
    const input = {
      prompt: task.prompt,
      aspect_ratio: task.aspectRatio,
      seed: task.seed,
      ...(task.negativePrompt ? { negative_prompt: task.negativePrompt } : {}),
      ...(task.duration ? { duration: task.duration } : {}),
      ...(task.fps ? { fps: task.fps } : {}),
      ...(task.referenceImageUrls.length ? { image_input: task.referenceImageUrls } : {}),
    };
    const created = prediction.safeParse(
      await requestJson(
        `${channel.baseUrl}/v1/models/${task.upstreamModel}/predictions`,
        { method: "POST", headers, body: JSON.stringify({ input }) },
        signal,
      ),
    );
    if (!created.success) throw malformed("a prediction");
    const settled = await poll(async () => {
      const p = prediction.safeParse(await requestJson(created.data.urls.get, { headers }, signal));
      if (!p.success) throw malformed("a prediction");
      return p.data.status === "succeeded" ||
        p.data.status === "failed" ||
        p.data.status === "canceled"
        ? p.data
        : undefined;
    }, signal);
    if (settled.status !== "succeeded") {
      const why = settled.error ?? settled.status;
      if (CONTENT_POLICY.test(why)) {
        throw new ProviderError(
          "caller",
          "content_policy",
          "The upstream refused the prompt under its content policy.",
        );
      }
      throw new ProviderError(
        "retryable",
        "upstream_failed",
        `The prediction ${settled.status}: ${why}`,
      );
    }
    const url = Array.isArray(settled.output) ? settled.output[0] : settled.output;
    if (!url) throw malformed("an output URL");
    return download(url, signal);
  },
};
