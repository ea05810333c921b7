import type { ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import type { Network } from "../../lib/network.js";
import type { PassDefaults } from "../passes/schema.js";
import { passesForUse } from "../passes/service.js";
import type { Channel } from "../routing/channels.js";
import { getTemplate, renderTemplate } from "../templates/service.js";
import {
  type Composition,
  type GenerateRequest,
  mediaTypeOf,
  type Quote,
  quote,
} from "./request.js";

export type { Composition } from "./request.js";

/** Parts of a prompt are joined in one fixed way, so one request always composes one prompt. */
const SEPARATOR = ", ";

/**
 * The final prompt, deterministically: the template filled in, then the caller's prompt, then
 * each style pass's fragment in the order given; the passes' negative prompts likewise. `userId`
 * is who generates (unknown before an x402 payment names the wallet): their own passes are free.
 */
export async function composeRequest(
  ctx: ServiceContext,
  request: GenerateRequest,
  use: { network: Network; userId: string | undefined },
): Promise<Composition> {
  const parts: string[] = [];
  if (request.templateId) {
    const template = await getTemplate(ctx, use.network, request.templateId, "templateId");
    parts.push(renderTemplate(template, request.templateVariables ?? {}));
  }
  if (request.prompt) parts.push(request.prompt);
  const mediaType = mediaTypeOf(request);
  if (mediaType === "audio" && request.stylePassIds.length > 0) {
    throw new AppError("pass_media_mismatch", "Style passes style images and videos, not audio.", {
      field: "stylePassIds",
    });
  }
  const passes =
    mediaType === "audio"
      ? []
      : await passesForUse(
          ctx,
          // A pass must style what the request makes, named or inferred from its models.
          { ...use, mediaType },
          request.stylePassIds,
        );
  parts.push(...passes.map((p) => p.stylePrompt));
  const negatives = passes.flatMap((p) => (p.negativePrompt ? [p.negativePrompt] : []));
  const defaults: PassDefaults = {};
  for (const pass of passes) {
    defaults.aspectRatio ??= pass.defaults.aspectRatio;
    defaults.resolution ??= pass.defaults.resolution;
  }
  return {
    prompt: parts.filter(Boolean).join(SEPARATOR),
    negativePrompt: negatives.length ? negatives.join(SEPARATOR) : null,
    passes,
    defaults,
  };
}

/** Composes and prices a request for one network: what every generation door quotes with. */
export async function quoteRequest(
  ctx: ServiceContext,
  request: GenerateRequest,
  use: { network: Network; userId: string | undefined },
  channels: readonly Channel[],
): Promise<Quote> {
  const composition = await composeRequest(ctx, request, use);
  return quote(request, use.network, channels, composition);
}
