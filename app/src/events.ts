import { authHeaders, readError } from "./api";
import type { Generation } from "./types";

/**
 * Follows GET /v1/generate/:id/events. EventSource cannot send an Authorization header, so the
 * stream is read with fetch. `status` events carry the whole generation; `done` the final one;
 * `reconnect` (the serving instance is shutting down) means open the stream again.
 */
export async function followGeneration(
  generationId: string,
  apiKey: string,
  onUpdate: (generation: Generation) => void,
  signal: AbortSignal,
): Promise<Generation> {
  for (;;) {
    const res = await fetch(`/v1/generate/${generationId}/events`, {
      headers: { ...authHeaders(apiKey), accept: "text/event-stream" },
      signal,
    });
    if (!res.ok || !res.body) throw await readError(res);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let last: Generation | null = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end = buffer.indexOf("\n\n");
      while (end !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf("\n\n");
        let event = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trim();
        }
        if (!data) continue;
        last = JSON.parse(data) as Generation;
        onUpdate(last);
        if (event === "done") return last;
      }
    }
    // Ended without `done` (a reconnect event, or a cut connection): read it again shortly.
    if (last && (last.status === "completed" || last.status === "failed")) return last;
    await new Promise((r) => setTimeout(r, 1000));
  }
}
