import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api";
import type { Auth } from "../auth";
import { ErrorNote, Loading } from "../ui/states";

interface WebhookSecret {
  secret: string;
  createdAt: string;
  previousSecretValidUntil: string | null;
}

/** The webhook signing secret: shown on request, rotated on request (the old one signs for a day). */
export function WebhookSecretPanel({ apiKey }: { apiKey: string }) {
  const queryClient = useQueryClient();
  const [shown, setShown] = useState(false);
  const secret = useQuery({
    queryKey: ["webhook-secret", apiKey],
    queryFn: () => api<WebhookSecret>("/v1/webhooks/secret", { token: apiKey }),
    enabled: shown,
  });
  const rotate = useMutation({
    mutationFn: () =>
      api<WebhookSecret>("/v1/webhooks/secret/rotate", { token: apiKey, method: "POST" }),
    onSuccess: (next) => {
      queryClient.setQueryData(["webhook-secret", apiKey], next);
      setShown(true);
    },
  });
  return (
    <div>
      <h2>Webhook secret</h2>
      <p className="hint">Verifies the Standard Webhooks signature of every delivery.</p>
      {!shown && (
        <button type="button" onClick={() => setShown(true)}>
          Show secret
        </button>
      )}
      {shown && secret.isPending && <Loading what="the secret" />}
      {secret.isError && <ErrorNote error={secret.error} retry={() => secret.refetch()} />}
      {shown && secret.data && (
        <div className="new-key">
          <code data-testid="webhook-secret">{secret.data.secret}</code>
          <p className="hint">
            Since {new Date(secret.data.createdAt).toLocaleString()}
            {secret.data.previousSecretValidUntil &&
              `; the previous one still signs until ${new Date(secret.data.previousSecretValidUntil).toLocaleString()}`}
            .
          </p>
          <button type="button" disabled={rotate.isPending} onClick={() => rotate.mutate()}>
            {rotate.isPending ? "Rotating…" : "Rotate"}
          </button>
        </div>
      )}
      {rotate.isError && <ErrorNote error={rotate.error} />}
    </div>
  );
}

/** A ready MCP client entry for this API over Streamable HTTP, with this browser's key. */
export function McpSnippet({ auth }: { auth: Auth }) {
  const [revealed, setRevealed] = useState(false);
  const key = revealed ? auth.apiKey : `${auth.apiKey.slice(0, 8)}…`;
  const snippet = JSON.stringify(
    {
      mcpServers: {
        polyforge: {
          url: `${window.location.origin}/mcp`,
          headers: { Authorization: `Bearer ${key}` },
        },
      },
    },
    null,
    2,
  );
  return (
    <div>
      <h2>MCP</h2>
      <p className="hint">
        For Cursor's <code>.cursor/mcp.json</code> or any MCP client that speaks Streamable HTTP
        (Claude Desktop runs <code>polyforge mcp</code> over stdio instead; see the README).
      </p>
      <pre className="snippet" data-testid="mcp-snippet">
        {snippet}
      </pre>
      <div className="row">
        <button type="button" className="link" onClick={() => setRevealed((r) => !r)}>
          {revealed ? "Hide the key" : "Show the key"}
        </button>
        <button
          type="button"
          onClick={() =>
            navigator.clipboard?.writeText(snippet.replace(key, auth.apiKey)).catch(() => undefined)
          }
        >
          Copy with the key
        </button>
      </div>
    </div>
  );
}
