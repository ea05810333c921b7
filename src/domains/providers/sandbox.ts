import { createHash } from "node:crypto";
import sharp from "sharp";
import { type AspectRatio, ratioOf } from "../catalog/models.js";
import { type Provider, ProviderError, type ProviderOutput, type ProviderTask } from "./types.js";

/**
 * The local renderer: real images and short videos made from the prompt and seed, the same
 * bytes for the same input. Sizes are capped (the long side at 512 px) so it stays fast.
 */

const LONG_SIDE = 512;
const VIDEO_FPS = 4;

export function dimensions(
  aspectRatio: AspectRatio,
  longSide = LONG_SIDE,
): { width: number; height: number } {
  const ratio = ratioOf(aspectRatio);
  const even = (n: number) => Math.max(2, Math.round(n / 2) * 2);
  return ratio >= 1
    ? { width: longSide, height: even(longSide / ratio) }
    : { width: even(longSide * ratio), height: longSide };
}

const escapeXml = (s: string) =>
  s.replace(
    /[<>&"']/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c] as string,
  );

function frameSvg(
  task: ProviderTask,
  width: number,
  height: number,
  frame: number,
  frames: number,
): string {
  const digest = createHash("sha256")
    .update(`${task.upstreamModel}\n${task.prompt}\n${task.seed}`)
    .digest();
  const hue = ((digest[0] as number) * 360) / 256 + (frames > 1 ? (360 * frame) / frames : 0);
  const hue2 = (hue + 40 + (digest[1] as number) / 4) % 360;
  const circles = Array.from({ length: 6 }, (_, i) => {
    const x = ((digest[2 + i] as number) / 255) * width;
    const y = ((digest[8 + i] as number) / 255) * height;
    const r = 10 + ((digest[14 + i] as number) / 255) * (Math.min(width, height) / 4);
    return `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${r.toFixed(1)}" fill="hsl(${(hue2 + i * 30) % 360},70%,60%)" fill-opacity="0.55"/>`;
  }).join("");
  const caption = escapeXml(task.prompt.slice(0, 60));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">
      <stop offset="0" stop-color="hsl(${hue % 360},65%,45%)"/><stop offset="1" stop-color="hsl(${hue2},65%,25%)"/>
    </linearGradient></defs>
    <rect width="100%" height="100%" fill="url(#g)"/>${circles}
    <text x="12" y="${height - 14}" font-family="sans-serif" font-size="14" fill="white">${caption}</text>
  </svg>`;
}

export async function renderSandbox(
  task: ProviderTask,
  onProgress?: (percent: number) => void,
): Promise<ProviderOutput> {
  const { width, height } = dimensions(task.aspectRatio);
  if (task.mediaType === "image") {
    const bytes = await sharp(Buffer.from(frameSvg(task, width, height, 0, 1)))
      .png()
      .toBuffer();
    return { bytes, contentType: "image/png" };
  }
  if (!task.duration)
    throw new ProviderError("caller", "invalid_duration", "A video needs a duration.");
  // An animated WebP: `duration` seconds at VIDEO_FPS frames a second, at a smaller size.
  const small = dimensions(task.aspectRatio, 256);
  const frames = task.duration * VIDEO_FPS;
  // Frame by frame, so progress can be told as it goes.
  const raw: Buffer[] = [];
  for (let i = 0; i < frames; i++) {
    raw.push(
      await sharp(Buffer.from(frameSvg(task, small.width, small.height, i, frames)))
        .ensureAlpha()
        .raw()
        .toBuffer(),
    );
    onProgress?.(Math.floor(((i + 1) * 90) / frames));
  }
  const bytes = await sharp(Buffer.concat(raw), {
    raw: {
      width: small.width,
      height: small.height * frames,
      channels: 4,
      pageHeight: small.height,
    },
  })
    .webp({ loop: 0, delay: Array(frames).fill(1000 / VIDEO_FPS), quality: 60 })
    .toBuffer();
  return { bytes, contentType: "image/webp" };
}

export const sandboxProvider: Provider = {
  generate: (task, _channel, _signal, onProgress) => renderSandbox(task, onProgress),
};
