import { wavSeconds } from "./wav.js";

/**
 * How long an audio file plays, read from its headers, for billing a transcription per second
 * (issue 20, item 4) without decoding it: WAV from its fmt and data chunks, MP3 by walking its
 * frame headers (exact for constant and variable bit rates alike). Undefined when the bytes are
 * neither, so the caller can refuse the file.
 */
export function audioSeconds(bytes: Buffer): number | undefined {
  return wavSeconds(bytes) ?? mp3Seconds(bytes);
}

/** kbit/s by bitrate index, MPEG-1 and MPEG-2/2.5 Layer III. */
const BITRATES = {
  v1: [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  v2: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
};
/** Hz by sample-rate index, for MPEG-1; MPEG-2 halves them and MPEG-2.5 quarters them. */
const SAMPLE_RATES = [44_100, 48_000, 32_000];

/** Seconds of an MPEG Layer III stream, or undefined when no frame is found at its start. */
export function mp3Seconds(bytes: Buffer): number | undefined {
  let at = 0;
  // An ID3v2 tag first: "ID3", version, flags, then its size in four 7-bit bytes.
  if (bytes.toString("latin1", 0, 3) === "ID3" && bytes.length >= 10) {
    const size =
      ((bytes[6] as number) << 21) |
      ((bytes[7] as number) << 14) |
      ((bytes[8] as number) << 7) |
      (bytes[9] as number);
    at = 10 + size;
  }
  let seconds = 0;
  let frames = 0;
  while (at + 4 <= bytes.length) {
    const frame = frameAt(bytes, at);
    if (!frame) break;
    seconds += frame.samples / frame.sampleRate;
    frames++;
    at += frame.length;
  }
  return frames > 0 ? seconds : undefined;
}

function frameAt(
  bytes: Buffer,
  at: number,
): { length: number; samples: number; sampleRate: number } | undefined {
  const b1 = bytes[at + 1] as number;
  const b2 = bytes[at + 2] as number;
  if (bytes[at] !== 0xff || (b1 & 0xe0) !== 0xe0) return undefined;
  const version = (b1 >> 3) & 0b11; // 0: MPEG-2.5, 2: MPEG-2, 3: MPEG-1
  const layer = (b1 >> 1) & 0b11; // 1: Layer III
  const bitrateIndex = b2 >> 4;
  const rateIndex = (b2 >> 2) & 0b11;
  if (version === 1 || layer !== 1 || bitrateIndex === 0 || bitrateIndex === 15 || rateIndex === 3)
    return undefined;
  const mpeg1 = version === 3;
  const kbps = (mpeg1 ? BITRATES.v1 : BITRATES.v2)[bitrateIndex] as number;
  const sampleRate = (SAMPLE_RATES[rateIndex] as number) / (mpeg1 ? 1 : version === 2 ? 2 : 4);
  const samples = mpeg1 ? 1152 : 576;
  const padding = (b2 >> 1) & 1;
  const length = Math.floor(((samples / 8) * kbps * 1000) / sampleRate) + padding;
  return { length, samples, sampleRate };
}
