import sharp from "sharp";
import type { MediaType } from "../catalog/models.js";
import { mp3Seconds } from "./audio-duration.js";
import { ProviderError, type ProviderOutput } from "./types.js";
import { wavSeconds } from "./wav.js";

const IMAGE_TYPES: Record<string, string> = {
  png: "image/png",
  jpeg: "image/jpeg",
  webp: "image/webp",
};
const VIDEO_TYPES: Record<string, string> = { webp: "image/webp", gif: "image/gif" };

/**
 * An upstream's 200 is not proof of a picture: the bytes must decode as the media asked for.
 * Returns the output with its content type taken from the bytes, never from the upstream.
 */
export async function validateOutput(
  mediaType: MediaType | "audio",
  output: ProviderOutput,
): Promise<ProviderOutput> {
  const bad = () =>
    new ProviderError(
      "retryable",
      "malformed_response",
      `The upstream's output is not a valid ${mediaType}.`,
    );
  if (mediaType === "audio") {
    const type = audioTypeOf(output.bytes);
    if (!type) throw bad();
    return { bytes: output.bytes, contentType: type };
  }
  if (mediaType === "video" && output.bytes.subarray(4, 8).toString("latin1") === "ftyp") {
    return { bytes: output.bytes, contentType: "video/mp4" };
  }
  const meta = await sharp(output.bytes, { animated: true })
    .metadata()
    .catch(() => undefined);
  const type = meta?.format && (mediaType === "image" ? IMAGE_TYPES : VIDEO_TYPES)[meta.format];
  if (!type || !meta.width || !meta.height) throw bad();
  return { bytes: output.bytes, contentType: type };
}

/**
 * Audio as its header says: a WAV whose RIFF header, fmt and data chunks read, or an MPEG
 * Layer III stream whose first frame header reads (after any ID3 tag), with some sound in it.
 */
function audioTypeOf(bytes: Buffer): "audio/wav" | "audio/mpeg" | undefined {
  const wav = wavSeconds(bytes);
  if (wav !== undefined) return wav > 0 ? "audio/wav" : undefined;
  const mp3 = mp3Seconds(bytes);
  return mp3 !== undefined && mp3 > 0 ? "audio/mpeg" : undefined;
}
