import { Router } from "express";
import type { AppContext } from "../../context.js";
import { mountOn } from "../../http/mount.js";
import { MAX_REFERENCE_IMAGES } from "../generations/request.js";
import { catalogContracts } from "./contract.js";
import { catalog, priceTable } from "./models.js";

/** The public catalog as GET /v1/models (and MCP's list_models) show it. */
export function catalogJson() {
  return {
    data: catalog.map((m) => ({
      id: m.id,
      name: m.name,
      type: m.type,
      aliases: m.aliases,
      capabilities: {
        resolutions: m.resolutions,
        aspectRatios: m.aspectRatios,
        durations: m.type === "video" ? m.durations : undefined,
        fps: m.fps && { options: m.fps.options, default: m.fps.default },
      },
      limits: { maxPromptLength: m.maxPromptLength, maxReferenceImages: MAX_REFERENCE_IMAGES },
      pricing: {
        unit: "credits",
        range: { min: m.range[0], max: m.range[1] },
        table: priceTable(m),
      },
    })),
  };
}

/** GET /v1/models: the public catalog, no key needed. */
export function catalogRoutes(ctx: AppContext): Router {
  const router = Router();
  const body = catalogJson();
  mountOn(router, ctx)(catalogContracts.listModels, async () => ({
    status: 200,
    headers: { "cache-control": "public, max-age=300" },
    body,
  }));
  return router;
}
