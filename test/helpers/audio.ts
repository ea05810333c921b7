/**
 * `frames` MPEG-1 Layer III frames at 128 kbit/s, 44.1 kHz (1152 samples, 417 bytes each, 418
 * padded): silent but well-formed headers, as an MP3's length is read from them.
 */
export function mp3(frames: number, options: { id3?: boolean; padding?: boolean } = {}): Buffer {
  const header = Buffer.from([0xff, 0xfb, options.padding ? 0x92 : 0x90, 0x00]);
  const length = 417 + (options.padding ? 1 : 0);
  const frame = Buffer.concat([header, Buffer.alloc(length - 4)]);
  const parts = Array.from({ length: frames }, () => frame);
  if (options.id3) {
    // ID3v2.4 with a 20-byte tag body (its size in four 7-bit bytes).
    parts.unshift(
      Buffer.concat([Buffer.from("ID3\x04\x00\x00\x00\x00\x00\x14", "latin1"), Buffer.alloc(20)]),
    );
  }
  return Buffer.concat(parts);
}

/** Seconds of `frames` frames of mp3(). */
export const mp3FrameSeconds = 1152 / 44_100;
