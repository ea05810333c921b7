import { createHash } from "node:crypto";

/**
 * WAV is a RIFF header and PCM samples: enough for real, playable audio made offline with no
 * encoder. Sandbox audio carries the text it speaks in a LIST/INFO comment (ICMT), so a
 * transcription of sandbox audio can give that text back.
 */

export interface WavOptions {
  seconds: number;
  /** Drives the tones, so the same input makes the same bytes. */
  seed: string;
  /** Stored as the file's comment (sandbox speech: the words it stands for). */
  comment?: string | undefined;
  sampleRate?: number;
}

const BITS = 16;

/** A mono 16-bit PCM WAV of exactly `seconds` (rounded to a whole sample), in tones. */
export function makeWav({ seconds, seed, comment, sampleRate = 16_000 }: WavOptions): Buffer {
  const samples = Math.round(seconds * sampleRate);
  const digest = createHash("sha256").update(seed).digest();
  const pcm = Buffer.alloc(samples * 2);
  // A new tone every quarter second, its pitch taken from the digest: audible, deterministic.
  const step = Math.max(1, Math.round(sampleRate / 4));
  for (let i = 0; i < samples; i++) {
    const hz = 220 + (digest[Math.floor(i / step) % 32] as number) * 2;
    const fade = Math.min(1, (i % step) / 200, (step - (i % step)) / 200);
    pcm.writeInt16LE(
      Math.round(Math.sin((2 * Math.PI * hz * i) / sampleRate) * 8_000 * fade),
      i * 2,
    );
  }
  const info = comment === undefined ? Buffer.alloc(0) : listInfo(comment);
  const header = Buffer.alloc(44);
  header.write("RIFF", 0, "latin1");
  header.writeUInt32LE(36 + info.length + pcm.length, 4);
  header.write("WAVE", 8, "latin1");
  header.write("fmt ", 12, "latin1");
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE((sampleRate * BITS) / 8, 28);
  header.writeUInt16LE(BITS / 8, 32);
  header.writeUInt16LE(BITS, 34);
  header.write("data", 36, "latin1");
  header.writeUInt32LE(pcm.length, 40);
  // The data chunk's header is the last 8 bytes of `header`; the LIST chunk goes before it.
  return Buffer.concat([header.subarray(0, 36), info, header.subarray(36), pcm]);
}

function listInfo(comment: string): Buffer {
  const text = Buffer.from(`${comment}\0`, "utf8");
  const padded = Buffer.concat([text, Buffer.alloc(text.length % 2)]);
  const chunk = Buffer.alloc(20);
  chunk.write("LIST", 0, "latin1");
  chunk.writeUInt32LE(4 + 8 + padded.length, 4);
  chunk.write("INFO", 8, "latin1");
  chunk.write("ICMT", 12, "latin1");
  chunk.writeUInt32LE(text.length, 16);
  return Buffer.concat([chunk, padded]);
}

/** The RIFF chunks of a WAV file, by id (the first of each), or undefined when it is not one. */
function chunksOf(bytes: Buffer): Map<string, Buffer> | undefined {
  if (bytes.length < 12 || bytes.toString("latin1", 0, 4) !== "RIFF") return undefined;
  if (bytes.toString("latin1", 8, 12) !== "WAVE") return undefined;
  const chunks = new Map<string, Buffer>();
  for (let at = 12; at + 8 <= bytes.length; ) {
    const id = bytes.toString("latin1", at, at + 4);
    const size = bytes.readUInt32LE(at + 4);
    // A streamed WAV may say its data is longer than the file: take what is there.
    if (!chunks.has(id))
      chunks.set(id, bytes.subarray(at + 8, Math.min(bytes.length, at + 8 + size)));
    at += 8 + size + (size % 2);
  }
  return chunks;
}

/** Seconds of audio in a WAV file, from its header, or undefined when it is not a readable WAV. */
export function wavSeconds(bytes: Buffer): number | undefined {
  const chunks = chunksOf(bytes);
  const fmt = chunks?.get("fmt ");
  const data = chunks?.get("data");
  if (!fmt || fmt.length < 16 || !data) return undefined;
  const byteRate = fmt.readUInt32LE(8);
  return byteRate > 0 ? data.length / byteRate : undefined;
}

/** The comment a WAV file carries (LIST/INFO ICMT), if any. */
export function wavComment(bytes: Buffer): string | undefined {
  const list = chunksOf(bytes)?.get("LIST");
  if (list?.toString("latin1", 0, 4) !== "INFO") return undefined;
  for (let at = 4; at + 8 <= list.length; ) {
    const id = list.toString("latin1", at, at + 4);
    const size = list.readUInt32LE(at + 4);
    if (id === "ICMT") return list.toString("utf8", at + 8, at + 8 + size).replace(/\0+$/, "");
    at += 8 + size + (size % 2);
  }
  return undefined;
}
