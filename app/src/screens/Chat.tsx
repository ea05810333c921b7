import { useQueryClient } from "@tanstack/react-query";
import { useRef, useState } from "react";
import { authHeaders, readError } from "../api";
import { useSignedIn } from "../auth";
import { useUsageModels } from "../catalog";
import { credits } from "../money";
import { Empty, ErrorNote, Loading } from "../ui/states";

/**
 * Chat with a text model through POST /v1/chat/completions, streamed: the reply appears as the
 * upstream writes it; when it ends, its usage and what it cost (held, charged, refunded).
 */

interface Turn {
  role: "user" | "assistant";
  content: string;
}

interface Billing {
  promptTokens: number;
  completionTokens: number;
  quoted: number;
  charged: number;
  refunded: number;
  upstream: string | null;
}

/** The `data:` payloads of a server-sent event stream, as they arrive. */
async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) if (line.startsWith("data: ")) yield line.slice(6);
    }
  }
}

export function ChatScreen() {
  const { apiKey } = useSignedIn();
  const queryClient = useQueryClient();
  const models = useUsageModels();
  const textModels = (models.data ?? []).filter((m) => m.type === "text");
  const [model, setModel] = useState("");
  const [prompt, setPrompt] = useState("");
  const [maxTokens, setMaxTokens] = useState(500);
  const [turns, setTurns] = useState<Turn[]>([]);
  const [reply, setReply] = useState<string | null>(null);
  const [billing, setBilling] = useState<Billing | null>(null);
  const [error, setError] = useState<unknown>(null);
  const stop = useRef<AbortController | null>(null);
  const chosen = model || textModels[0]?.id || "";

  async function send(event: React.FormEvent) {
    event.preventDefault();
    if (!prompt.trim() || !chosen || stop.current) return;
    const conversation: Turn[] = [...turns, { role: "user", content: prompt }];
    setTurns(conversation);
    setPrompt("");
    setReply("");
    setBilling(null);
    setError(null);
    const controller = new AbortController();
    stop.current = controller;
    let text = "";
    let upstream: string | null = null;
    try {
      const res = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: { ...authHeaders(apiKey), "content-type": "application/json" },
        body: JSON.stringify({
          model: chosen,
          messages: conversation,
          max_tokens: maxTokens,
          stream: true,
          stream_options: { include_usage: true },
        }),
        signal: controller.signal,
      });
      if (!res.ok || !res.body) throw await readError(res);
      for await (const data of sseData(res.body)) {
        if (data === "[DONE]") break;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        if (chunk.routing) upstream = chunk.routing.upstream;
        const delta = chunk.choices?.[0]?.delta?.content;
        if (delta) {
          text += delta;
          setReply(text);
        }
        if (chunk.usage && chunk.cost) {
          setBilling({
            promptTokens: chunk.usage.prompt_tokens,
            completionTokens: chunk.usage.completion_tokens,
            ...chunk.cost,
            upstream,
          });
        }
      }
    } catch (err) {
      if (!controller.signal.aborted) setError(err);
    } finally {
      stop.current = null;
      if (text) setTurns([...conversation, { role: "assistant", content: text }]);
      setReply(null);
      void queryClient.invalidateQueries({ queryKey: ["balance"] });
    }
  }

  if (models.isPending) return <Loading what="models" />;
  if (models.error) return <ErrorNote error={models.error} retry={() => void models.refetch()} />;
  if (textModels.length === 0) return <Empty>No text model is offered.</Empty>;

  return (
    <section className="chat">
      <h1>Chat</h1>
      <form onSubmit={send} className="chat-form">
        <label>
          Model
          <select value={chosen} onChange={(e) => setModel(e.target.value)}>
            {textModels.map((m) => (
              <option key={m.id} value={m.id}>
                {m.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Longest reply (tokens)
          <input
            type="number"
            min={1}
            value={maxTokens}
            onChange={(e) => setMaxTokens(Number(e.target.value) || 1)}
          />
        </label>
        <ol className="turns" aria-live="polite">
          {turns.map((turn, i) => (
            // Turns are only ever appended: the index is stable.
            // biome-ignore lint/suspicious/noArrayIndexKey: see above
            <li key={i} className={`turn turn-${turn.role}`} data-testid={`turn-${turn.role}`}>
              <strong>{turn.role === "user" ? "You" : chosen}</strong> {turn.content}
            </li>
          ))}
          {reply !== null && (
            <li className="turn turn-assistant" data-testid="reply-streaming">
              <strong>{chosen}</strong> {reply || "…"}
            </li>
          )}
        </ol>
        <label>
          Message
          <textarea value={prompt} onChange={(e) => setPrompt(e.target.value)} rows={3} />
        </label>
        <div className="actions">
          <button type="submit" disabled={reply !== null || !prompt.trim()}>
            Send
          </button>
          {reply !== null && (
            <button type="button" onClick={() => stop.current?.abort()}>
              Stop
            </button>
          )}
          {turns.length > 0 && reply === null && (
            <button type="button" onClick={() => setTurns([])}>
              New conversation
            </button>
          )}
        </div>
      </form>
      {error !== null && <ErrorNote error={error} />}
      {billing && (
        <p className="chat-billing" data-testid="chat-billing">
          {billing.promptTokens} prompt + {billing.completionTokens} reply tokens · charged{" "}
          {credits(billing.charged)} of {credits(billing.quoted)} held, refunded{" "}
          {credits(billing.refunded)}
          {billing.upstream && <> · served by {billing.upstream}</>}
        </p>
      )}
    </section>
  );
}
