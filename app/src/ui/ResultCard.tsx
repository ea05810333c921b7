import { useState } from "react";
import type { GenerationResult } from "../types";

/** One model's result: its media, progress, cost, routing, and on failure its code and refund. */
export function ResultCard({ result }: { result: GenerationResult }) {
  const r = result;
  const done = r.status === "completed" || r.status === "failed";
  return (
    <article
      className={`result result-${r.status}`}
      data-model={r.model}
      aria-label={`Result of ${r.model}`}
    >
      <header>
        <h3>{r.model}</h3>
        <span className={`badge ${r.status}`} data-testid="result-status">
          {r.status}
        </span>
      </header>
      {!done && (
        <progress max={100} value={r.progress ?? undefined} aria-label={`${r.model} progress`}>
          {r.progress ?? 0}%
        </progress>
      )}
      {r.status === "completed" && r.imageUrl && (
        <img src={r.imageUrl} alt={`Output of ${r.model}`} loading="lazy" />
      )}
      {r.status === "completed" && r.videoUrl && <VideoOutput url={r.videoUrl} model={r.model} />}
      <dl className="facts small">
        <dt>Cost</dt>
        <dd data-testid="result-cost">
          {r.cost} quoted · {r.charged} charged · {r.refunded} refunded
        </dd>
        <dt>Served by</dt>
        <dd data-testid="result-upstream">
          {r.routing?.upstream ?? "—"}
          {r.routing?.failover ? " (failed over)" : r.routing ? " (no failover)" : ""}
        </dd>
        {r.routing && r.routing.attempts.length > 0 && (
          <>
            <dt>Attempts</dt>
            <dd>
              {r.routing.attempts.map((a) => `${a.channel}: ${a.outcome} (${a.ms} ms)`).join("; ")}
            </dd>
          </>
        )}
        {r.fps && (
          <>
            <dt>Frame rate</dt>
            <dd>{r.fps} fps</dd>
          </>
        )}
      </dl>
      {r.error && (
        <p className="failure" role="alert" data-testid="result-error">
          Failed: <code>{r.error.code}</code> {r.error.message}.{" "}
          {r.refunded > 0 ? `Refunded ${r.refunded} credits.` : "Nothing was charged."}
        </p>
      )}
      {r.status === "completed" && (r.imageUrl || r.videoUrl) && (
        <p className="actions">
          <a href={r.imageUrl ?? r.videoUrl ?? "#"} download>
            Download
          </a>
        </p>
      )}
    </article>
  );
}

/**
 * A video result with a player. The sandbox renders animated WebP, which a <video> element
 * cannot decode: on that error it is shown as the animated image it is.
 */
function VideoOutput({ url, model }: { url: string; model: string }) {
  const [asImage, setAsImage] = useState(false);
  if (asImage) return <img src={url} alt={`Video output of ${model} (animated)`} />;
  return (
    <video
      src={url}
      controls
      loop
      muted
      playsInline
      aria-label={`Video of ${model}`}
      onError={() => setAsImage(true)}
    />
  );
}
