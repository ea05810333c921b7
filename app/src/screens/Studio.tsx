import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, newIdempotencyKey } from "../api";
import { useSignedIn } from "../auth";
import { useModels } from "../catalog";
import { credits } from "../money";
import type { Page, Reservation, Workflow, WorkflowRun } from "../types";
import { ResultCard } from "../ui/ResultCard";
import { Empty, ErrorNote, Loading } from "../ui/states";

interface StepDraft {
  /** Stable while the step's id is being typed. */
  key: string;
  id: string;
  prompt: string;
  model: string;
  /** The step whose images this one takes as references ("" for none). */
  from: string;
}

const MAX_STEPS = 10;

/** The graph as a person reads it: each step, and the step it takes images from. */
function Graph({ steps }: { steps: Workflow["steps"] }) {
  return (
    <ol className="graph" aria-label="Steps">
      {steps.map((s) => (
        <li key={s.id}>
          <strong>{s.id}</strong>: {s.request.models.join(", ")}
          {s.referenceSteps?.length ? (
            <span className="hint">
              {" "}
              ← images of {s.referenceSteps.map((r) => r.step).join(", ")}
            </span>
          ) : null}
        </li>
      ))}
    </ol>
  );
}

function NewWorkflow({ apiKey }: { apiKey: string }) {
  const queryClient = useQueryClient();
  const models = useModels();
  const imageModels = (models.data ?? []).filter((m) => m.type === "image");
  const firstModel = imageModels[0]?.id ?? "";
  const [name, setName] = useState("");
  const [steps, setSteps] = useState<StepDraft[]>([
    { key: crypto.randomUUID(), id: "step1", prompt: "", model: "", from: "" },
  ]);
  const update = (i: number, patch: Partial<StepDraft>) =>
    setSteps((all) => all.map((s, j) => (j === i ? { ...s, ...patch } : s)));
  const create = useMutation({
    mutationFn: () =>
      api<Workflow>("/v1/workflows", {
        token: apiKey,
        json: {
          name,
          steps: steps.map((s) => ({
            id: s.id,
            request: { prompt: s.prompt, models: [s.model || firstModel] },
            ...(s.from && { referenceSteps: [{ step: s.from }] }),
          })),
        },
      }),
    onSuccess: () => {
      setName("");
      setSteps([{ key: crypto.randomUUID(), id: "step1", prompt: "", model: "", from: "" }]);
      queryClient.invalidateQueries({ queryKey: ["workflows"] });
    },
  });
  return (
    <>
      <h2>New workflow</h2>
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <label>
          Workflow name
          <input required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        {steps.map((s, i) => (
          <fieldset key={s.key} data-step={i}>
            <legend>Step {i + 1}</legend>
            <div className="row">
              <label>
                Step id
                <input required value={s.id} onChange={(e) => update(i, { id: e.target.value })} />
              </label>
              <label>
                Model
                <select
                  value={s.model || firstModel}
                  onChange={(e) => update(i, { model: e.target.value })}
                >
                  {imageModels.map((m) => (
                    <option key={m.id} value={m.id}>
                      {m.name}
                    </option>
                  ))}
                </select>
              </label>
              <label>
                Takes images of
                <select value={s.from} onChange={(e) => update(i, { from: e.target.value })}>
                  <option value="">no step</option>
                  {steps.slice(0, i).map((p) => (
                    <option key={p.id} value={p.id}>
                      {p.id}
                    </option>
                  ))}
                </select>
              </label>
            </div>
            <label>
              Prompt
              <textarea
                required
                rows={2}
                value={s.prompt}
                onChange={(e) => update(i, { prompt: e.target.value })}
              />
            </label>
          </fieldset>
        ))}
        <div className="row">
          <button
            type="button"
            className="link"
            disabled={steps.length >= MAX_STEPS}
            onClick={() =>
              setSteps((all) => [
                ...all,
                {
                  key: crypto.randomUUID(),
                  id: `step${all.length + 1}`,
                  prompt: "",
                  model: "",
                  from: all.at(-1)?.id ?? "",
                },
              ])
            }
          >
            Add a step
          </button>
          <button type="submit" disabled={create.isPending}>
            {create.isPending ? "Saving…" : "Save workflow"}
          </button>
        </div>
      </form>
      {create.isError && <ErrorNote error={create.error} />}
    </>
  );
}

/** A run, read again every second until it has ended. */
function RunView({
  apiKey,
  workflowId,
  runId,
}: {
  apiKey: string;
  workflowId: string;
  runId: string;
}) {
  const run = useQuery({
    queryKey: ["workflow-run", apiKey, runId],
    queryFn: () => api<WorkflowRun>(`/v1/workflows/${workflowId}/runs/${runId}`, { token: apiKey }),
    refetchInterval: (q) => (q.state.data && q.state.data.status !== "running" ? false : 1000),
  });
  if (run.isPending) return <Loading what="the run" />;
  if (run.isError) return <ErrorNote error={run.error} retry={() => run.refetch()} />;
  const r = run.data;
  return (
    <div className="run" data-testid="run">
      <p data-testid="run-status">
        Run <code>{r.runId}</code>: {r.status} · quoted {r.cost.quoted}, charged {r.cost.charged},
        refunded {r.cost.refunded} · reservation {r.reservation.status}
      </p>
      {r.steps.map((s) => (
        <div key={s.id} className="run-step" data-step-id={s.id}>
          <h4>
            {s.id}: <span className={`badge ${s.status}`}>{s.status}</span>
            {s.error && (
              <>
                {" "}
                <code>{s.error.code}</code>
              </>
            )}
          </h4>
          <div className="results">
            {s.generation?.results.map((res) => (
              <ResultCard key={res.model} result={res} />
            ))}
          </div>
        </div>
      ))}
    </div>
  );
}

function Workflows({ apiKey }: { apiKey: string }) {
  const queryClient = useQueryClient();
  const [run, setRun] = useState<{ workflowId: string; runId: string } | null>(null);
  const list = useQuery({
    queryKey: ["workflows", apiKey],
    queryFn: () => api<Page<Workflow>>("/v1/workflows?limit=50", { token: apiKey }),
  });
  const start = useMutation({
    mutationFn: (id: string) =>
      api<WorkflowRun>(`/v1/workflows/${id}/run`, { token: apiKey, method: "POST" }),
    onSuccess: (r) => {
      setRun({ workflowId: r.workflowId, runId: r.runId });
      queryClient.invalidateQueries({ queryKey: ["balance"] });
    },
  });
  const remove = useMutation({
    mutationFn: (id: string) => api(`/v1/workflows/${id}`, { token: apiKey, method: "DELETE" }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["workflows"] }),
  });
  return (
    <>
      <h2>Saved workflows</h2>
      {list.isPending && <Loading what="workflows" />}
      {list.isError && <ErrorNote error={list.error} retry={() => list.refetch()} />}
      {list.data?.data.length === 0 && <Empty>No saved workflows yet.</Empty>}
      <ul className="passes" data-testid="workflows">
        {list.data?.data.map((w) => (
          <li key={w.id} className="card">
            <h3>{w.name}</h3>
            <Graph steps={w.steps} />
            <p className="hint">
              {w.cost === null ? "cannot be quoted now" : `${credits(w.cost)} a run`}
            </p>
            <div className="row">
              <button
                type="button"
                disabled={start.isPending}
                aria-label={`Run ${w.name}`}
                onClick={() => start.mutate(w.id)}
              >
                Run
              </button>
              <button
                type="button"
                className="danger"
                aria-label={`Delete ${w.name}`}
                onClick={() => remove.mutate(w.id)}
              >
                Delete
              </button>
            </div>
          </li>
        ))}
      </ul>
      {start.isError && <ErrorNote error={start.error} />}
      {remove.isError && <ErrorNote error={remove.error} />}
      {run && <RunView apiKey={apiKey} workflowId={run.workflowId} runId={run.runId} />}
    </>
  );
}

/** Reserve credits for a batch, then settle to get back what is left. */
function Reservations({ apiKey }: { apiKey: string }) {
  const queryClient = useQueryClient();
  const [amount, setAmount] = useState("100");
  const [reservation, setReservation] = useState<Reservation | null>(null);
  const reserve = useMutation({
    mutationFn: () =>
      api<Reservation>("/v1/studio/reserve", {
        token: apiKey,
        json: { credits: Number(amount), expiresInSeconds: 3600 },
        headers: { "Idempotency-Key": newIdempotencyKey() },
      }),
    onSuccess: (r) => {
      setReservation(r);
      queryClient.invalidateQueries({ queryKey: ["balance"] });
    },
  });
  const settle = useMutation({
    mutationFn: (id: string) =>
      api<Reservation & { returnedCredits: number }>("/v1/studio/settle", {
        token: apiKey,
        json: { reservationId: id },
      }),
    onSuccess: (r) => {
      setReservation(r);
      queryClient.invalidateQueries({ queryKey: ["balance"] });
    },
  });
  return (
    <>
      <h2>Reservations</h2>
      <p className="hint">
        Set credits aside for a batch; generations draw from it with its id; settling returns what
        is left.
      </p>
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          reserve.mutate();
        }}
      >
        <label>
          Credits to reserve
          <input
            type="number"
            min={1}
            step={1}
            value={amount}
            onChange={(e) => setAmount(e.target.value)}
          />
        </label>
        <button type="submit" disabled={reserve.isPending}>
          Reserve
        </button>
      </form>
      {reserve.isError && <ErrorNote error={reserve.error} />}
      {settle.isError && <ErrorNote error={settle.error} />}
      {reservation && (
        <p data-testid="reservation">
          <code>{reservation.reservationId}</code>: {reservation.status} ·{" "}
          {credits(reservation.reservedCredits)} reserved
          {reservation.status === "active" && (
            <>
              {" "}
              <button type="button" onClick={() => settle.mutate(reservation.reservationId)}>
                Settle
              </button>
            </>
          )}
        </p>
      )}
    </>
  );
}

export function StudioScreen() {
  const { apiKey } = useSignedIn();
  return (
    <section aria-labelledby="studio-title">
      <h1 id="studio-title">Studio</h1>
      <Workflows apiKey={apiKey} />
      <NewWorkflow apiKey={apiKey} />
      <Reservations apiKey={apiKey} />
    </section>
  );
}
