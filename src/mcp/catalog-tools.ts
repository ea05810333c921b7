import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import type { PolyforgeApi } from "./api.js";
import { answer, reading } from "./tool-answer.js";

/** list_models: the catalog as GET /v1/models gives it, optionally of one media type. */
export function registerCatalogTools(server: McpServer, api: PolyforgeApi): void {
  server.registerTool(
    "list_models",
    {
      title: "List models",
      description:
        "The models you can use, of four types: image and video (capabilities: resolutions, aspect ratios, durations, frame rates; limits: the longest prompt each takes; a price table), text (context length, most output tokens, image input; credits per million input and output tokens) and audio (kind speech, transcription, music or sound_effect; voices, formats or durations; credits per million characters, per minute, or per clip, second or started minute). Prices in credits.",
      inputSchema: { mediaType: z.enum(["image", "video", "text", "audio"]).optional() },
      outputSchema: { models: z.array(z.record(z.string(), z.unknown())) },
      annotations: reading,
    },
    async ({ mediaType }) =>
      answer(async () => ({
        models: (await api.models()).filter((m) => !mediaType || m.type === mediaType),
      })),
  );
}
