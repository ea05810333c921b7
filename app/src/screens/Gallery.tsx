import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api, query } from "../api";
import { useSignedIn } from "../auth";
import { useModels } from "../catalog";
import { navigate } from "../router";
import type { Generation, LedgerEntry, Page } from "../types";
import { ResultCard } from "../ui/ResultCard";
import { Empty, ErrorNote, Loading } from "../ui/states";

/** The ledger entries that moved this generation's credits: its hold, charges and refunds. */
function MoneyRecord({ apiKey, generation }: { apiKey: string; generation: Generation }) {
  const entries = useQuery({
    queryKey: ["transactions", apiKey, "all"],
    queryFn: () => api<Page<LedgerEntry>>("/v1/transactions?limit=100", { token: apiKey }),
  });
  const id = generation.generationId;
  const mine = entries.data?.data.filter(
    (e) => e.reference === id || e.holdId?.includes(id) || JSON.stringify(e.metadata).includes(id),
  );
  return (
    <div>
      <h3>Money</h3>
      <p data-testid="money">
        Quoted {generation.cost.quoted} · charged {generation.cost.charged} · refunded{" "}
        {generation.cost.refunded} credits
      </p>
      {entries.isPending && <Loading what="ledger entries" />}
      {entries.isError && <ErrorNote error={entries.error} />}
      {mine && mine.length === 0 && <Empty>No ledger entries among the latest 100.</Empty>}
      {mine && mine.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>Kind</th>
              <th>Amount</th>
              <th>Balance after</th>
              <th>When</th>
            </tr>
          </thead>
          <tbody>
            {mine.map((e) => (
              <tr key={e.id}>
                <td>{e.kind}</td>
                <td>{e.amount}</td>
                <td>{e.balanceAfter}</td>
                <td>{new Date(e.createdAt).toLocaleString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

function Detail({ apiKey, generation }: { apiKey: string; generation: Generation }) {
  const [shared, setShared] = useState<string | null>(null);
  const url = generation.results.find((r) => r.imageUrl || r.videoUrl);
  const link = url?.imageUrl ?? url?.videoUrl ?? null;
  return (
    <section className="detail" aria-label="Generation detail" data-testid="detail">
      <h2>
        <code>{generation.generationId}</code>
      </h2>
      <p className="prompt">{generation.prompt}</p>
      <div className="row">
        <button
          type="button"
          onClick={() => navigate(`/playground?prompt=${encodeURIComponent(generation.prompt)}`)}
        >
          Reuse this prompt
        </button>
        {link && (
          <button
            type="button"
            onClick={async () => {
              await navigator.clipboard?.writeText(link).catch(() => undefined);
              setShared(link);
            }}
          >
            Share link
          </button>
        )}
      </div>
      {shared && (
        <p role="status">
          Signed link (opens without a key for 24 hours): <a href={shared}>{shared}</a>
        </p>
      )}
      <MoneyRecord apiKey={apiKey} generation={generation} />
      <div className="results">
        {generation.results.map((r) => (
          <ResultCard key={r.model} result={r} />
        ))}
      </div>
    </section>
  );
}

export function GalleryScreen() {
  const { apiKey } = useSignedIn();
  const models = useModels();
  const [filters, setFilters] = useState({
    mediaType: "",
    status: "",
    model: "",
    from: "",
    to: "",
  });
  const [text, setText] = useState("");
  const [openId, setOpenId] = useState<string | null>(null);
  const history = useQuery({
    queryKey: ["history", apiKey, filters],
    queryFn: () =>
      api<Page<Generation>>(
        `/v1/history${query({
          limit: 100,
          mediaType: filters.mediaType,
          status: filters.status,
          model: filters.model,
          from: filters.from && new Date(filters.from).toISOString(),
          to: filters.to && new Date(`${filters.to}T23:59:59`).toISOString(),
        })}`,
        { token: apiKey },
      ),
  });
  const set = (k: keyof typeof filters) => (e: { target: { value: string } }) =>
    setFilters((f) => ({ ...f, [k]: e.target.value }));
  const needle = text.trim().toLowerCase();
  // The API filters by type, status, model and date; the text search runs over what it returned.
  const shown = history.data?.data.filter(
    (g) => !needle || g.prompt.toLowerCase().includes(needle),
  );
  const open = history.data?.data.find((g) => g.generationId === openId);

  return (
    <section aria-labelledby="gallery-title">
      <h1 id="gallery-title">Gallery</h1>
      <form className="row filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Search prompts
          <input type="search" value={text} onChange={(e) => setText(e.target.value)} />
        </label>
        <label>
          Type
          <select value={filters.mediaType} onChange={set("mediaType")}>
            <option value="">any</option>
            <option>image</option>
            <option>video</option>
          </select>
        </label>
        <label>
          Status
          <select value={filters.status} onChange={set("status")}>
            <option value="">any</option>
            <option>completed</option>
            <option>failed</option>
            <option>processing</option>
            <option>pending</option>
          </select>
        </label>
        <label>
          Model
          <select value={filters.model} onChange={set("model")}>
            <option value="">any</option>
            {models.data?.map((m) => (
              <option key={m.id} value={m.id}>
                {m.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          From
          <input type="date" value={filters.from} onChange={set("from")} />
        </label>
        <label>
          To
          <input type="date" value={filters.to} onChange={set("to")} />
        </label>
      </form>
      {history.isPending && <Loading what="your generations" />}
      {history.isError && <ErrorNote error={history.error} retry={() => history.refetch()} />}
      {shown?.length === 0 && <Empty>No generations match.</Empty>}
      {shown && shown.length > 0 && (
        <ul className="gallery" data-testid="gallery">
          {shown.map((g) => {
            const first = g.results.find((r) => r.imageUrl);
            return (
              <li key={g.generationId}>
                <button
                  type="button"
                  className="tile"
                  aria-pressed={openId === g.generationId}
                  onClick={() => setOpenId(g.generationId)}
                >
                  {first?.imageUrl ? (
                    <img src={first.imageUrl} alt="" />
                  ) : (
                    <span className="noimg">{g.mediaType}</span>
                  )}
                  <span className="caption">{g.prompt}</span>
                  <span className={`badge ${g.status}`}>{g.status}</span>
                </button>
              </li>
            );
          })}
        </ul>
      )}
      {open && <Detail apiKey={apiKey} generation={open} />}
    </section>
  );
}
