import { createHash } from "node:crypto";
import sharp from "sharp";
import { type AspectRatio, ratioOf } from "../catalog/models.js";
import { type Provider, ProviderError, type ProviderOutput, type ProviderTask } from "./types.js";

/**
 * The local renderer: real images and short videos made from the prompt and seed, the same
 * bytes for the same input. Sizes are capped (the long side at 512 px) so it stays fast.
 */

const LONG_SIDE = 512;
/** Frames drawn from SVG per second of video; the frames between are derived (see below). */
const KEYFRAME_RATE = 4;
/** A task without a frame rate (a caller of renderSandbox that names none). */
const DEFAULT_FPS = 24;

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
  // An animated WebP of `duration` seconds at the task's frame rate, at a smaller size. Drawing
  // every frame from SVG would make a 15 s, 30 fps video take seconds, so KEYFRAME_RATE frames
  // a second are drawn and each frame between them is its keyframe with the timeline bar moved
  // on: every frame is its own picture, and the file plays at the rate asked for.
  const fps = task.fps ?? DEFAULT_FPS;
  const small = dimensions(task.aspectRatio, 256);
  const keyframes = task.duration * Math.min(KEYFRAME_RATE, fps);
  const drawn: Buffer[] = [];
  for (let i = 0; i < keyframes; i++) {
    drawn.push(
      await sharp(Buffer.from(frameSvg(task, small.width, small.height, i, keyframes)))
        .ensureAlpha()
        .raw()
        .toBuffer(),
    );
    onProgress?.(Math.floor(((i + 1) * 90) / keyframes));
  }
  const frames = task.duration * fps;
  const frameBytes = small.width * small.height * 4;
  const raw = Buffer.alloc(frameBytes * frames);
  for (let i = 0; i < frames; i++) {
    const frame = raw.subarray(i * frameBytes, (i + 1) * frameBytes);
    (drawn[Math.floor((i * keyframes) / frames)] as Buffer).copy(frame);
    drawTimeline(frame, small.width, small.height, i, frames);
  }
  // Whole milliseconds that add up to exactly `duration` seconds (1000 / 24 is not whole).
  const delay = Array.from(
    { length: frames },
    (_, i) => Math.round(((i + 1) * 1000) / fps) - Math.round((i * 1000) / fps),
  );
  const bytes = await sharp(raw, {
    raw: {
      width: small.width,
      height: small.height * frames,
      channels: 4,
      pageHeight: small.height,
    },
  })
    .webp({ loop: 0, delay, quality: 60, effort: 0 })
    .toBuffer();
  return { bytes, contentType: "image/webp" };
}

/**
 * A white bar along the bottom edge, as long as the part played, and the frame's number in
 * binary as white cells along the top: every frame differs from the one before, so the encoder
 * keeps each one (it merges identical frames into one longer one).
 */
function drawTimeline(frame: Buffer, width: number, height: number, index: number, frames: number) {
  const row = (y: number, from: number, to: number) =>
    frame.fill(255, (y * width + from) * 4, (y * width + to) * 4);
  const played = Math.max(1, Math.round((width * (index + 1)) / frames));
  for (let y = height - 3; y < height; y++) row(y, 0, played);
  const cell = 4;
  for (let bit = 0; 1 << bit <= frames && (bit + 1) * cell <= width; bit++) {
    if (!((index >> bit) & 1)) continue;
    for (let y = 0; y < 3; y++) row(y, bit * cell, (bit + 1) * cell);
  }
}

export const sandboxProvider: Provider = {
  generate: (task, _channel, _signal, onProgress) => renderSandbox(task, onProgress),
};
