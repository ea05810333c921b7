import { type AspectRatio, ratioOf } from "../catalog/models.js";
import { download, jsonHeaders, malformed, requestJson } from "./http.js";
import { type Provider, ProviderError } from "./types.js";

/** OpenAI Images API: POST /v1/images/generations, answered with base64 or a URL. */

function size(aspectRatio: AspectRatio): string {
  const ratio = ratioOf(aspectRatio);
  return ratio === 1 ? "1024x1024" : ratio > 1 ? "1536x1024" : "1024x1536";
}

export const openaiProvider: Provider = {
  async generate(task, channel, signal) {
    // A video model routed here is the channel's misconfiguration, not the caller's fault:
    // fail over, and count it against the channel.
    if (task.mediaType !== "image") {
      throw new ProviderError(
        "channel",
        "unsupported_media",
        "The OpenAI Images API makes images only.",
      );
    }
    const body = await requestJson(
      `${channel.baseUrl}/v1/images/generations`,
      {
        method: "POST",
        headers: jsonHeaders(`Bearer ${channel.apiKey ?? ""}`),
        body: JSON.stringify({
          model: task.upstreamModel,
          prompt: task.prompt,
          n: 1,
          size: size(task.aspectRatio),
        }),
      },
      signal,
    );
    const first = (body as { data?: Array<{ b64_json?: unknown; url?: unknown }> })?.data?.[0];
    if (typeof first?.b64_json === "string") {
      const bytes = Buffer.from(first.b64_json, "base64");
      if (bytes.length === 0) throw malformed("image bytes");
      return { bytes, contentType: "image/png" };
    }
    if (typeof first?.url === "string") return download(first.url, signal);
    throw malformed("data[0].b64_json or data[0].url");
  },
};
