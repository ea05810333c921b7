import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, newIdempotencyKey } from "../api";
import { useSignedIn } from "../auth";
import type { ApiKey, Network } from "../types";
import { Empty, ErrorNote, Loading } from "../ui/states";
import { McpSnippet, WebhookSecretPanel } from "./Integrations";

/**
 * The account's active keys. A wallet session manages both networks' keys; an API key only
 * its own network's (the API enforces it).
 */
export function KeyList({ token, current }: { token: string; current?: string }) {
  const queryClient = useQueryClient();
  const keys = useQuery({
    queryKey: ["api-keys", token],
    queryFn: () => api<{ data: ApiKey[] }>("/v1/api-keys", { token }),
  });
  const revoke = useMutation({
    mutationFn: (id: string) => api(`/v1/api-keys/${id}`, { token, method: "DELETE" }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["api-keys"] }),
  });
  if (keys.isPending) return <Loading what="API keys" />;
  if (keys.isError) return <ErrorNote error={keys.error} retry={() => keys.refetch()} />;
  if (keys.data.data.length === 0) return <Empty>No active keys.</Empty>;
  return (
    <>
      {revoke.isError && <ErrorNote error={revoke.error} />}
      <table className="keys">
        <caption className="sr-only">Active API keys</caption>
        <thead>
          <tr>
            <th>Name</th>
            <th>Key</th>
            <th>Network</th>
            <th>Created</th>
            <th>Last used</th>
            <th>Spent / limit</th>
            <th>Today / per day</th>
            <th>
              <span className="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {keys.data.data.map((k) => (
            <tr key={k.id} data-key-id={k.id}>
              <td>{k.name}</td>
              <td>
                <code>
                  {k.prefix}…{k.last4}
                </code>
                {current?.endsWith(k.last4) && current.startsWith(k.prefix) && " (this browser)"}
              </td>
              <td>{k.network}</td>
              <td>{new Date(k.createdAt).toLocaleString()}</td>
              <td>{k.lastUsedAt ? new Date(k.lastUsedAt).toLocaleString() : "never"}</td>
              <td>
                {k.spent.total} / {k.limits.total ?? "no limit"}
              </td>
              <td>
                {k.spent.today} / {k.limits.perDay ?? "no limit"}
              </td>
              <td>
                <button
                  type="button"
                  className="danger"
                  aria-label={`Revoke ${k.name} (${k.prefix}…${k.last4})`}
                  disabled={revoke.isPending}
                  onClick={() => revoke.mutate(k.id)}
                >
                  Revoke
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

export function SettingsScreen() {
  const auth = useSignedIn();
  const token = auth.sessionToken ?? auth.apiKey;
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const [network, setNetwork] = useState<Network>(auth.network);
  const [limitTotal, setLimitTotal] = useState("");
  const [limitPerDay, setLimitPerDay] = useState("");
  const [copied, setCopied] = useState(false);
  const create = useMutation({
    mutationFn: () =>
      api<ApiKey>("/v1/api-keys", {
        token,
        json: {
          name,
          network,
          ...((limitTotal || limitPerDay) && {
            limits: {
              ...(limitTotal && { total: Number(limitTotal) }),
              ...(limitPerDay && { perDay: Number(limitPerDay) }),
            },
          }),
        },
        headers: { "Idempotency-Key": newIdempotencyKey() },
      }),
    onSuccess: () => {
      setName("");
      setLimitTotal("");
      setLimitPerDay("");
      setCopied(false);
      queryClient.invalidateQueries({ queryKey: ["api-keys"] });
    },
  });

  return (
    <section aria-labelledby="settings-title">
      <h1 id="settings-title">Settings</h1>
      <h2>API keys</h2>
      <p className="hint">
        A key is shown once, when it is made. At most 3 active keys per account, both networks
        counted.
        {!auth.sessionToken && " Signed in with a key: you manage this network's keys only."}
      </p>
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <label>
          Name
          <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} />
        </label>
        <label>
          Network
          <select value={network} onChange={(e) => setNetwork(e.target.value as Network)}>
            <option value="test">test (Base Sepolia)</option>
            <option value="live">live (Base mainnet)</option>
          </select>
        </label>
        <label>
          Credit limit (total)
          <input
            type="number"
            min={0}
            step={1}
            value={limitTotal}
            onChange={(e) => setLimitTotal(e.target.value)}
            placeholder="none"
          />
        </label>
        <label>
          Credit limit per day
          <input
            type="number"
            min={0}
            step={1}
            value={limitPerDay}
            onChange={(e) => setLimitPerDay(e.target.value)}
            placeholder="none"
          />
        </label>
        <button type="submit" disabled={create.isPending}>
          {create.isPending ? "Creating…" : "Create key"}
        </button>
      </form>
      {create.isError && <ErrorNote error={create.error} />}
      {create.data?.key && (
        <div className="new-key" role="status">
          <p>Your new key, shown only now:</p>
          <code data-testid="new-key">{create.data.key}</code>
          <button
            type="button"
            onClick={async () => {
              await navigator.clipboard?.writeText(create.data.key ?? "");
              setCopied(true);
            }}
          >
            {copied ? "Copied" : "Copy"}
          </button>
        </div>
      )}
      <KeyList token={token} current={auth.apiKey} />
      <WebhookSecretPanel apiKey={auth.apiKey} />
      <McpSnippet auth={auth} />
    </section>
  );
}
