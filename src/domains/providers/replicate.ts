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
/** What is kept of a created prediction to poll it again after a crash. */
const created = z.object({ id: z.string(), urls: z.object({ get: z.url() }) });
type Created = z.infer<typeof created>;

export const replicateProvider: Provider = {
  async generate(task, channel, signal, _onProgress, job) {
    const headers = {
      "content-type": "application/json",
      authorization: `Bearer ${channel.apiKey ?? ""}`,
    };
    const finish = async (p: Created) => {
      const settled = await poll(async () => {
        const next = prediction.safeParse(await requestJson(p.urls.get, { headers }, signal));
        if (!next.success) throw malformed("a prediction");
        return next.data.status === "succeeded" ||
          next.data.status === "failed" ||
          next.data.status === "canceled"
          ? next.data
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
    };

    const resumed = created.safeParse(job?.resume);
    if (resumed.success) {
      try {
        return await finish(resumed.data);
      } catch (err) {
        // Replicate no longer knows the prediction (a 4xx): only then is one created again.
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
      ...(task.referenceImageUrls.length ? { image_input: task.referenceImageUrls } : {}),
    };
    const first = prediction.safeParse(
      await requestJson(
        `${channel.baseUrl}/v1/models/${task.upstreamModel}/predictions`,
        { method: "POST", headers, body: JSON.stringify({ input }) },
        signal,
      ),
    );
    if (!first.success) throw malformed("a prediction");
    const handle = { id: first.data.id, urls: { get: first.data.urls.get } };
    await job?.submitted(handle);
    return finish(handle);
  },
};
