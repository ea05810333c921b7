import { ProviderError } from "./types.js";

/**
 * Server-sent events as OpenAI and Anthropic stream them: blocks separated by a blank line,
 * each of `event:` and `data:` lines (several data lines join with "\n"), comments (":") and
 * other fields ignored. Lines may end in \n, \r\n or \r.
 */
export interface ServerSentEvent {
  event: string | undefined;
  data: string;
}

const DEFAULT_IDLE_TIMEOUT_MS = 30_000;

/**
 * The events of a streamed HTTP body. A body silent for `idleTimeoutMs` is hung: that is a
 * `timeout`, told apart from the call's own signal, which bounds the whole call.
 */
export async function* readEvents(
  body: ReadableStream<Uint8Array>,
  idleTimeoutMs = DEFAULT_IDLE_TIMEOUT_MS,
): AsyncGenerator<ServerSentEvent> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event: string | undefined;
  let data: string[] = [];
  try {
    for (;;) {
      const chunk = await readWithin(reader, idleTimeoutMs);
      if (chunk.done) break;
      buffer += chunk.value;
      const lines = buffer.split(/\r\n|\r|\n/);
      // The last piece may be half a line; a lone "\r" at the end may be half of "\r\n".
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        if (line === "") {
          if (data.length) yield { event, data: data.join("\n") };
          event = undefined;
          data = [];
        } else if (line.startsWith("data:")) data.push(stripSpace(line.slice(5)));
        else if (line.startsWith("event:")) event = stripSpace(line.slice(6));
      }
    }
    if (data.length) yield { event, data: data.join("\n") };
  } finally {
    // Stops the upstream's body when the consumer stops early (a client that went away).
    await reader.cancel().catch(() => {});
  }
}

const stripSpace = (value: string) => (value.startsWith(" ") ? value.slice(1) : value);

async function readWithin(
  reader: ReadableStreamDefaultReader<string>,
  ms: number,
): ReturnType<ReadableStreamDefaultReader<string>["read"]> {
  let timer: NodeJS.Timeout | undefined;
  const idle = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ProviderError("retryable", "timeout", `The upstream's stream was silent ${ms} ms.`),
        ),
      ms,
    );
  });
  try {
    return await Promise.race([reader.read(), idle]);
  } finally {
    clearTimeout(timer);
  }
}
