import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useMemo, useRef, useState } from "react";
import { api, newIdempotencyKey } from "../api";
import { useSignedIn } from "../auth";
import { priceOf, useModels } from "../catalog";
import { followGeneration } from "../events";
import { credits } from "../money";
import { useLocation } from "../router";
import type {
  CatalogModel,
  Generation,
  MediaType,
  Page,
  QuoteAnswer,
  StylePass,
  Template,
} from "../types";
import { ResultCard } from "../ui/ResultCard";
import { Empty, ErrorNote, Loading } from "../ui/states";
import { type Reference, References } from "./References";
import { TemplatePicker } from "./TemplatePicker";

const MAX_MODELS = 6;

/** The value after it has stopped changing for `ms`: the quote follows the form, not each key. */
function useSettled<T>(value: T, ms = 300): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return settled;
}

const union = (lists: string[][]) => [...new Set(lists.flat())];

function ModelPicker({
  models,
  mediaType,
  selected,
  onToggle,
  resolution,
  duration,
}: {
  models: CatalogModel[];
  mediaType: MediaType;
  selected: string[];
  onToggle: (id: string) => void;
  resolution: string;
  duration?: number;
}) {
  const [search, setSearch] = useState("");
  const needle = search.trim().toLowerCase();
  const shown = models.filter(
    (m) =>
      m.type === mediaType &&
      (!needle ||
        m.id.includes(needle) ||
        m.name.toLowerCase().includes(needle) ||
        m.aliases.some((a) => a.includes(needle))),
  );
  return (
    <fieldset className="models">
      <legend>
        Models ({selected.length}/{MAX_MODELS})
      </legend>
      <label>
        Search models
        <input type="search" value={search} onChange={(e) => setSearch(e.target.value)} />
      </label>
      {shown.length === 0 && (
        <Empty>
          No {mediaType} model matches “{search}”.
        </Empty>
      )}
      <ul className="model-list">
        {shown.map((m) => {
          const checked = selected.includes(m.id);
          const price = priceOf(m, resolution, duration);
          return (
            <li key={m.id}>
              <label className="inline">
                <input
                  type="checkbox"
                  value={m.id}
                  checked={checked}
                  disabled={!checked && selected.length >= MAX_MODELS}
                  onChange={() => onToggle(m.id)}
                />
                <span>{m.name}</span>
                <span className="price">
                  {price === undefined ? `not at ${resolution}` : credits(price)}
                </span>
              </label>
            </li>
          );
        })}
      </ul>
    </fieldset>
  );
}

export function PlaygroundScreen() {
  const { apiKey } = useSignedIn();
  const { search } = useLocation();
  const queryClient = useQueryClient();
  const models = useModels();
  const [prompt, setPrompt] = useState(search.get("prompt") ?? "");
  const [mediaType, setMediaType] = useState<MediaType>("image");
  const [selected, setSelected] = useState<string[]>([]);
  const [aspectRatio, setAspectRatio] = useState("");
  const [resolution, setResolution] = useState("");
  const [duration, setDuration] = useState<number | undefined>(undefined);
  const [references, setReferences] = useState<Reference[]>([]);
  const [passIds, setPassIds] = useState<string[]>([]);
  const [templateId, setTemplateId] = useState("");
  const [templateValues, setTemplateValues] = useState<Record<string, string>>({});
  const [generation, setGeneration] = useState<Generation | null>(null);
  const follow = useRef<AbortController | null>(null);

  useEffect(() => () => follow.current?.abort(), []);

  const chosen = useMemo(
    () => (models.data ?? []).filter((m) => selected.includes(m.id)),
    [models.data, selected],
  );
  const ofType = (models.data ?? []).filter((m) => m.type === mediaType);
  const basis = chosen.length ? chosen : ofType;
  const resolutions = union(basis.map((m) => m.capabilities.resolutions));
  const ratios = union(basis.map((m) => m.capabilities.aspectRatios));
  const durations = [...new Set(basis.flatMap((m) => m.capabilities.durations ?? []))].sort(
    (a, b) => a - b,
  );
  // Until one is picked: the resolution most of these models offer, so most show a price.
  const commonest = [...resolutions].sort(
    (a, b) =>
      basis.filter((m) => m.capabilities.resolutions.includes(b)).length -
      basis.filter((m) => m.capabilities.resolutions.includes(a)).length,
  )[0];
  const effectiveResolution = resolutions.includes(resolution) ? resolution : (commonest ?? "");
  const effectiveDuration =
    mediaType === "video"
      ? duration !== undefined && durations.includes(duration)
        ? duration
        : durations[0]
      : undefined;

  const passes = useQuery({
    queryKey: ["passes", apiKey, mediaType],
    queryFn: () =>
      api<Page<StylePass>>(`/v1/passes?mediaType=${mediaType}&limit=50`, { token: apiKey }),
  });

  const templates = useQuery({
    queryKey: ["templates", apiKey, "all"],
    queryFn: () => api<Page<Template>>("/v1/templates?limit=100", { token: apiKey }),
  });

  const body = useMemo(
    () => ({
      // With a template the prompt is optional: it is added after the template's text.
      ...(prompt.trim() ? { prompt } : {}),
      ...(templateId && {
        templateId,
        templateVariables: Object.fromEntries(
          Object.entries(templateValues).filter(([, v]) => v !== ""),
        ),
      }),
      mediaType,
      models: selected,
      ...(aspectRatio && { aspectRatio }),
      ...(effectiveResolution && { resolution: effectiveResolution }),
      ...(effectiveDuration !== undefined && { duration: effectiveDuration }),
      ...(references.length && { referenceImageUrls: references.map((r) => r.url) }),
      ...(passIds.length && { stylePassIds: passIds }),
    }),
    [
      prompt,
      mediaType,
      selected,
      aspectRatio,
      effectiveResolution,
      effectiveDuration,
      references,
      passIds,
      templateId,
      templateValues,
    ],
  );
  const settledBody = useSettled(body);
  const quote = useQuery({
    queryKey: ["quote", apiKey, settledBody],
    queryFn: () => api<QuoteAnswer>("/v1/generate/quote", { token: apiKey, json: settledBody }),
    enabled:
      ("prompt" in settledBody || "templateId" in settledBody) && settledBody.models.length > 0,
    retry: false,
  });

  const submit = useMutation({
    mutationFn: () =>
      api<{ generationId: string; cost: number }>("/v1/generate", {
        token: apiKey,
        json: body,
        headers: { "Idempotency-Key": newIdempotencyKey() },
      }),
    onSuccess: async ({ generationId }) => {
      follow.current?.abort();
      const controller = new AbortController();
      follow.current = controller;
      queryClient.invalidateQueries({ queryKey: ["balance"] });
      try {
        await followGeneration(generationId, apiKey, setGeneration, controller.signal);
      } finally {
        queryClient.invalidateQueries({ queryKey: ["balance"] });
        queryClient.invalidateQueries({ queryKey: ["history"] });
      }
    },
    onMutate: () => setGeneration(null),
  });

  const ready = selected.length > 0 && (prompt.trim() !== "" || templateId !== "");
  const toggleModel = (id: string) =>
    setSelected((s) => (s.includes(id) ? s.filter((x) => x !== id) : [...s, id]));

  if (models.isPending) return <Loading what="the catalog" />;
  if (models.isError) return <ErrorNote error={models.error} retry={() => models.refetch()} />;

  return (
    <section aria-labelledby="playground-title" className="playground">
      <h1 id="playground-title">Playground</h1>
      <div className="playground-grid">
        <form
          className="generate-form"
          onSubmit={(e) => {
            e.preventDefault();
            submit.mutate();
          }}
        >
          <label className="wide">
            Prompt
            <textarea
              value={prompt}
              onChange={(e) => setPrompt(e.target.value)}
              rows={3}
              maxLength={10_000}
              required={!templateId}
            />
          </label>
          <fieldset className="row">
            <legend>Media type</legend>
            {(["image", "video"] as const).map((t) => (
              <label key={t} className="inline">
                <input
                  type="radio"
                  name="mediaType"
                  checked={mediaType === t}
                  onChange={() => {
                    setMediaType(t);
                    setSelected([]);
                    setPassIds([]);
                  }}
                />
                {t}
              </label>
            ))}
          </fieldset>
          <div className="row">
            <label>
              Aspect ratio
              <select value={aspectRatio} onChange={(e) => setAspectRatio(e.target.value)}>
                <option value="">model default</option>
                {ratios.map((r) => (
                  <option key={r}>{r}</option>
                ))}
              </select>
            </label>
            <label>
              Resolution
              <select value={effectiveResolution} onChange={(e) => setResolution(e.target.value)}>
                {resolutions.map((r) => (
                  <option key={r}>{r}</option>
                ))}
              </select>
            </label>
            {mediaType === "video" && (
              <label>
                Duration
                <select
                  value={effectiveDuration ?? ""}
                  onChange={(e) => setDuration(Number(e.target.value))}
                >
                  {durations.map((d) => (
                    <option key={d} value={d}>
                      {d} s
                    </option>
                  ))}
                </select>
              </label>
            )}
          </div>
          <ModelPicker
            models={models.data}
            mediaType={mediaType}
            selected={selected}
            onToggle={toggleModel}
            resolution={effectiveResolution}
            {...(effectiveDuration !== undefined && { duration: effectiveDuration })}
          />
          <References apiKey={apiKey} references={references} onChange={setReferences} />
          <TemplatePicker
            templates={templates.data?.data ?? []}
            error={templates.error}
            templateId={templateId}
            values={templateValues}
            onPick={(id) => {
              setTemplateId(id);
              setTemplateValues({});
            }}
            onValue={(name, value) => setTemplateValues((t) => ({ ...t, [name]: value }))}
          />
          <fieldset>
            <legend>Style passes</legend>
            {passes.isPending && <Loading what="style passes" />}
            {passes.isError && <ErrorNote error={passes.error} />}
            {passes.data?.data.length === 0 && <Empty>No {mediaType} style passes yet.</Empty>}
            {passes.data?.data.map((p) => (
              <label key={p.id} className="inline">
                <input
                  type="checkbox"
                  checked={passIds.includes(p.id)}
                  onChange={() =>
                    setPassIds((s) =>
                      s.includes(p.id) ? s.filter((x) => x !== p.id) : [...s, p.id],
                    )
                  }
                />
                {p.name} ({p.fee} per result)
              </label>
            ))}
          </fieldset>
          <div className="quote" aria-live="polite" data-testid="quote">
            {!ready ? (
              <p className="hint">Write a prompt and pick a model to see the price.</p>
            ) : quote.isFetching && !quote.data ? (
              <Loading what="the quote" />
            ) : quote.isError ? (
              <ErrorNote error={quote.error} />
            ) : quote.data ? (
              <p>
                Quote: <strong data-testid="quote-total">{credits(quote.data.quote.total)}</strong>{" "}
                ({quote.data.quote.models.map((m) => `${m.model} ${m.credits}`).join(", ")}
                {quote.data.quote.passFees.length > 0 &&
                  `; pass fees ${quote.data.quote.passFees.reduce((s, f) => s + f.credits, 0)}`}
                ) at {quote.data.resolution}, {quote.data.aspectRatio}
                <br />
                Final prompt: <q data-testid="final-prompt">{quote.data.prompt}</q>
              </p>
            ) : null}
          </div>
          <button type="submit" disabled={submit.isPending || !ready}>
            {submit.isPending ? "Submitting…" : "Generate"}
          </button>
        </form>
        <div className="output" aria-live="polite">
          {submit.isError && <ErrorNote error={submit.error} />}
          {!submit.data && !submit.isError && (
            <Empty>Results appear here, side by side, as each model finishes.</Empty>
          )}
          {submit.data && !generation && <Loading what="results" />}
          {generation && (
            <>
              <p data-testid="generation-summary">
                <code>{generation.generationId}</code>: {generation.status} · quoted{" "}
                {generation.cost.quoted}, charged {generation.cost.charged}, refunded{" "}
                {generation.cost.refunded}
              </p>
              <div className="results">
                {generation.results.map((r) => (
                  <ResultCard key={r.model} result={r} />
                ))}
              </div>
            </>
          )}
        </div>
      </div>
    </section>
  );
}
