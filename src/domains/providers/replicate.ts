import { z } from "zod";
import {
  CONTENT_POLICY,
  commonInput,
  contentPolicyRefusal,
  download,
  jsonHeaders,
  malformed,
  parseAnswer,
  poll,
  requestJson,
} from "./http.js";
import { type Provider, ProviderError } from "./types.js";
import { resumeOrSubmit } from "./upstream-job.js";

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

export const replicateProvider: Provider = {
  async generate(task, channel, signal, _onProgress, job) {
    const headers = jsonHeaders(`Bearer ${channel.apiKey ?? ""}`);
    return resumeOrSubmit(
      job,
      created,
      async () => {
        const input = {
          ...commonInput(task),
          ...(task.referenceImageUrls.length ? { image_input: task.referenceImageUrls } : {}),
        };
        const first = parseAnswer(
          prediction,
          await requestJson(
            `${channel.baseUrl}/v1/models/${task.upstreamModel}/predictions`,
            { method: "POST", headers, body: JSON.stringify({ input }) },
            signal,
          ),
          "a prediction",
        );
        return { id: first.id, urls: { get: first.urls.get } };
      },
      async (p) => {
        const settled = await poll(async () => {
          const next = parseAnswer(
            prediction,
            await requestJson(p.urls.get, { headers }, signal),
            "a prediction",
          );
          return next.status === "succeeded" ||
            next.status === "failed" ||
            next.status === "canceled"
            ? next
            : undefined;
        }, signal);
        if (settled.status !== "succeeded") {
          const why = settled.error ?? settled.status;
          if (CONTENT_POLICY.test(why)) throw contentPolicyRefusal();
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
    );
  },
};
