/**
 * The launch catalog (shared/catalog.md): 12 image and 16 video models. Prices are whole
 * credits (1 credit = $0.01), each inside the published range, and reproduce the published
 * examples: gpt-image-2 at 2K = 4, gemini-3-pro-image-preview at 2K = 12.
 */

export const imageResolutions = ["0.5K", "1K", "2K", "4K"] as const;
export const videoResolutions = ["480p", "720p", "1080p"] as const;
export const aspectRatios = ["1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "21:9"] as const;

export type MediaType = "image" | "video";
export type ImageResolution = (typeof imageResolutions)[number];
export type VideoResolution = (typeof videoResolutions)[number];
export type Resolution = ImageResolution | VideoResolution;
export type AspectRatio = (typeof aspectRatios)[number];

/** Width over height of an aspect ratio such as "16:9". */
export function ratioOf(aspectRatio: AspectRatio): number {
  const [w, h] = aspectRatio.split(":").map(Number) as [number, number];
  return w / h;
}

/** Credits by resolution, by duration (seconds), or both; a missing key means "not offered". */
export type PriceRule =
  | { flat: number }
  | { byResolution: Partial<Record<Resolution, number>> }
  | { byDuration: Record<number, number> };

export interface CatalogModel {
  id: string;
  name: string;
  type: MediaType;
  aliases: readonly string[];
  resolutions: readonly Resolution[];
  aspectRatios: readonly AspectRatio[];
  /** Allowed durations in seconds (video only). */
  durations: readonly number[];
  price: PriceRule;
  /** Published price range, which the rule must stay inside. */
  range: readonly [number, number];
  /**
   * The longest prompt the upstream takes, in characters: the request-wide limit
   * (MAX_PROMPT_LENGTH) unless the upstream's own is lower. Checked when quoting, so a prompt
   * it would refuse is the caller's error before anything is held.
   */
  maxPromptLength: number;
  /** Frame rates a video model renders at (the caller may pick one), and the one it uses unasked. */
  fps: { options: readonly number[]; default: number } | undefined;
}

/**
 * The longest prompt any request takes (the public docs: 1–10,000 characters). A model whose
 * upstream takes less says so in its `maxPromptLength`.
 */
export const MAX_PROMPT_LENGTH = 10_000;

const image = (
  id: string,
  name: string,
  range: [number, number],
  price: PriceRule,
  { aliases = [], maxPromptLength = MAX_PROMPT_LENGTH }: ImageLimits = {},
): CatalogModel => ({
  id,
  name,
  type: "image",
  aliases,
  resolutions: imageResolutions,
  aspectRatios,
  durations: [],
  price,
  range,
  maxPromptLength,
  fps: undefined,
});

interface ImageLimits {
  aliases?: string[];
  maxPromptLength?: number;
}

interface VideoLimits {
  maxPromptLength: number;
  /** The first is the default. */
  fps: [number, ...number[]];
}

const video = (
  id: string,
  name: string,
  range: [number, number],
  durations: number[],
  price: PriceRule,
  { maxPromptLength, fps }: VideoLimits,
): CatalogModel => ({
  id,
  name,
  type: "video",
  aliases: [],
  resolutions: videoResolutions,
  aspectRatios: ["16:9", "9:16", "1:1"],
  durations,
  price,
  range,
  maxPromptLength,
  fps: { options: [...fps].sort((a, b) => a - b), default: fps[0] },
});

/** Veo reads about 1,024 tokens and renders at 24 fps only. */
const veo: VideoLimits = { maxPromptLength: 4_000, fps: [24] };
/** Kling's API refuses prompts over 2,500 characters; it renders at 24 or 30 fps. */
const kling: VideoLimits = { maxPromptLength: 2_500, fps: [24, 30] };
/** Seedance takes about 500 words, at 24 fps. */
const seedance: VideoLimits = { maxPromptLength: 2_000, fps: [24] };

// Prompt limits below MAX_PROMPT_LENGTH are the upstreams' own (in characters, rounded down
// where an upstream counts tokens); frame rates are what each upstream renders at.
export const catalog: readonly CatalogModel[] = [
  // GPT Image takes 32,000 characters: the request-wide limit applies.
  image("gpt-image-2", "GPT Image 2", [2, 6], {
    byResolution: { "0.5K": 2, "1K": 3, "2K": 4, "4K": 6 },
  }),
  // Imagen reads at most 480 tokens.
  image("imagen-4.0-apimart", "Imagen 4.0", [12, 12], { flat: 12 }, { maxPromptLength: 1_900 }),
  image(
    "gemini-3-pro-image-preview",
    "Nano Banana Pro",
    [12, 15],
    { byResolution: { "0.5K": 12, "1K": 12, "2K": 12, "4K": 15 } },
    { aliases: ["nano-banana-pro"] },
  ),
  image(
    "gemini-3.1-flash-image-preview",
    "Nano Banana 2",
    [9, 18],
    { byResolution: { "0.5K": 9, "1K": 9, "2K": 12, "4K": 18 } },
    { aliases: ["nano-banana-2"] },
  ),
  image("doubao-seedream-4.5", "Seedream 4.5", [8, 8], { flat: 8 }, { maxPromptLength: 3_000 }),
  image(
    "doubao-seedream-5-0-lite",
    "Seedream 5 Lite",
    [8, 8],
    { flat: 8 },
    { maxPromptLength: 3_000 },
  ),
  image(
    "grok-imagine-1.0-apimart",
    "Grok Imagine",
    [5, 5],
    { flat: 5 },
    { maxPromptLength: 4_000 },
  ),
  image("qwen-image-2.0", "Qwen Image 2", [6, 6], { flat: 6 }, { maxPromptLength: 800 }),
  image("wan2.7-image", "Wan 2.7", [7, 7], { flat: 7 }, { maxPromptLength: 2_000 }),
  image(
    "gemini-2.5-flash-image-preview",
    "Nano Banana",
    [4, 4],
    { flat: 4 },
    { aliases: ["nano-banana"] },
  ),
  image("z-image-turbo", "Z-Image Turbo", [3, 3], { flat: 3 }),
  image("doubao-seedance-4-0", "Seedream 4.0", [6, 6], { flat: 6 }, { maxPromptLength: 3_000 }),

  video("veo3.1-quality", "VEO3 Quality", [180, 180], [8], { flat: 180 }, veo),
  video("veo3.1-fast", "VEO3 Fast", [24, 24], [8], { flat: 24 }, veo),
  video("veo3.1-lite", "VEO3 Lite", [12, 12], [8], { flat: 12 }, veo),
  video(
    "sora-2-preview",
    "Sora 2",
    [8, 8],
    [4, 8, 12],
    { flat: 8 },
    {
      maxPromptLength: MAX_PROMPT_LENGTH,
      fps: [30],
    },
  ),
  video(
    "kling-v3",
    "Kling v3",
    [101, 303],
    [5, 10, 15],
    { byDuration: { 5: 101, 10: 202, 15: 303 } },
    kling,
  ),
  video(
    "kling-video-o1",
    "Kling O1",
    [101, 202],
    [5, 10],
    { byDuration: { 5: 101, 10: 202 } },
    kling,
  ),
  video("kling-v2-6", "Kling 2.6", [56, 111], [5, 10], { byDuration: { 5: 56, 10: 111 } }, kling),
  video(
    "doubao-seedance-2.0",
    "Seedance 2.0",
    [109, 327],
    [5, 10, 15],
    { byDuration: { 5: 109, 10: 218, 15: 327 } },
    seedance,
  ),
  video(
    "doubao-seedance-1-5-pro",
    "Seedance 1.5",
    [66, 132],
    [5, 10],
    { byDuration: { 5: 66, 10: 132 } },
    seedance,
  ),
  // MiniMax's video API refuses prompts over 2,000 characters.
  video(
    "minimax-hailuo-02",
    "Hailuo 02",
    [30, 30],
    [6, 10],
    { flat: 30 },
    {
      maxPromptLength: 2_000,
      fps: [25],
    },
  ),
  video(
    "wan2.7",
    "Wan 2.7",
    [100, 299],
    [5, 10, 15],
    { byDuration: { 5: 100, 10: 200, 15: 299 } },
    { maxPromptLength: 5_000, fps: [24, 16, 30] },
  ),
  video(
    "wan2.5-preview",
    "Wan 2.5",
    [100, 200],
    [5, 10],
    { byDuration: { 5: 100, 10: 200 } },
    { maxPromptLength: 2_000, fps: [24, 16] },
  ),
  video(
    "viduq3-pro",
    "Vidu Q3 Pro",
    [144, 576],
    [4, 8, 12, 16],
    { byDuration: { 4: 144, 8: 288, 12: 432, 16: 576 } },
    { maxPromptLength: 2_000, fps: [24, 30] },
  ),
  video(
    "viduq3-turbo",
    "Vidu Q3 Turbo",
    [58, 231],
    [4, 8, 12, 16],
    { byDuration: { 4: 58, 8: 116, 12: 173, 16: 231 } },
    { maxPromptLength: 2_000, fps: [24] },
  ),
  video(
    "skyreels-v4-fast",
    "SkyReels V4",
    [132, 396],
    [5, 10, 15],
    { byDuration: { 5: 132, 10: 264, 15: 396 } },
    { maxPromptLength: 2_000, fps: [24] },
  ),
  video(
    "grok-imagine-1.0-video-apimart",
    "Grok Video",
    [13, 21],
    [6],
    { byResolution: { "480p": 13, "720p": 17, "1080p": 21 } },
    { maxPromptLength: 4_000, fps: [24] },
  ),
];

const byName = new Map<string, CatalogModel>();
for (const model of catalog) {
  for (const name of [model.id, ...model.aliases]) byName.set(name, model);
}

/** A model by its id or one of its aliases. */
export const findModel = (idOrAlias: string): CatalogModel | undefined => byName.get(idOrAlias);

/** Credits for one generation with this model, or undefined when the options are not offered. */
export function priceOf(
  model: CatalogModel,
  options: { resolution: Resolution; duration?: number | undefined },
): number | undefined {
  const rule = model.price;
  if ("flat" in rule) return rule.flat;
  if ("byResolution" in rule) return rule.byResolution[options.resolution];
  return options.duration === undefined ? undefined : rule.byDuration[options.duration];
}

/** Every price this model can take, for GET /v1/models. */
export function priceTable(
  model: CatalogModel,
): Array<{ resolution: Resolution; duration?: number; credits: number }> {
  const rows: Array<{ resolution: Resolution; duration?: number; credits: number }> = [];
  for (const resolution of model.resolutions) {
    if (model.type === "image") {
      const credits = priceOf(model, { resolution });
      if (credits !== undefined) rows.push({ resolution, credits });
    } else {
      for (const duration of model.durations) {
        const credits = priceOf(model, { resolution, duration });
        if (credits !== undefined) rows.push({ resolution, duration, credits });
      }
    }
  }
  return rows;
}
