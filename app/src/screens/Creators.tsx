import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api";
import { useSignedIn } from "../auth";
import { credits } from "../money";
import type { MediaType, Page, StylePass } from "../types";
import { Empty, ErrorNote, Loading } from "../ui/states";
import { AnalyticsPanel } from "./Analytics";
import { PayoutsPanel } from "./Payouts";
import { TemplateForm } from "./TemplateForm";

interface Earnings {
  totalEarned: number;
  available: number;
  pendingPayout: number;
  paidOut: number;
  passes: { passId: string; name: string; uses: number; feesCharged: number; earned: number }[];
}

const EMPTY_FORM = {
  name: "",
  stylePrompt: "",
  negativePrompt: "",
  fee: "0",
  tags: "",
  mediaType: "image",
};

export function CreatorsScreen() {
  const { apiKey } = useSignedIn();
  const queryClient = useQueryClient();
  const [form, setForm] = useState(EMPTY_FORM);
  const passes = useQuery({
    queryKey: ["passes", apiKey, "mine"],
    queryFn: () =>
      api<Page<StylePass>>("/v1/passes?creator=me&includeArchived=true&limit=100", {
        token: apiKey,
      }),
  });
  const earnings = useQuery({
    queryKey: ["earnings", apiKey],
    queryFn: () => api<Earnings>("/v1/profile/earnings", { token: apiKey }),
  });
  const refresh = () => {
    queryClient.invalidateQueries({ queryKey: ["passes"] });
    queryClient.invalidateQueries({ queryKey: ["analytics"] });
  };
  const create = useMutation({
    mutationFn: () =>
      api<StylePass>("/v1/passes", {
        token: apiKey,
        json: {
          name: form.name,
          stylePrompt: form.stylePrompt,
          ...(form.negativePrompt && { negativePrompt: form.negativePrompt }),
          fee: Number(form.fee),
          tags: form.tags
            .split(",")
            .map((t) => t.trim())
            .filter(Boolean),
          mediaType: form.mediaType as MediaType,
        },
      }),
    onSuccess: () => {
      setForm(EMPTY_FORM);
      refresh();
    },
  });
  const archive = useMutation({
    mutationFn: (id: string) => api(`/v1/passes/${id}/archive`, { token: apiKey, method: "POST" }),
    onSuccess: refresh,
  });
  const field = (k: keyof typeof EMPTY_FORM) => ({
    value: form[k],
    onChange: (e: { target: { value: string } }) => setForm((f) => ({ ...f, [k]: e.target.value })),
  });

  return (
    <section aria-labelledby="creators-title">
      <h1 id="creators-title">Creators</h1>
      <h2>Earnings</h2>
      {earnings.isPending && <Loading what="earnings" />}
      {earnings.isError && <ErrorNote error={earnings.error} />}
      {earnings.data && (
        <>
          <p data-testid="earnings">
            Earned {credits(earnings.data.totalEarned)} in all · {credits(earnings.data.available)}{" "}
            available · {credits(earnings.data.paidOut)} paid out
          </p>
          <PayoutsPanel apiKey={apiKey} available={earnings.data.available} />
        </>
      )}
      <AnalyticsPanel apiKey={apiKey} />
      <h2>New style pass</h2>
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <label>
          Name
          <input required maxLength={100} {...field("name")} />
        </label>
        <label>
          Style prompt (added to every prompt that uses the pass)
          <textarea required rows={2} {...field("stylePrompt")} />
        </label>
        <label>
          Negative prompt (optional)
          <input {...field("negativePrompt")} />
        </label>
        <div className="row">
          <label>
            Fee per model result (credits)
            <input type="number" min={0} step={1} required {...field("fee")} />
          </label>
          <label>
            Media type
            <select {...field("mediaType")}>
              <option>image</option>
              <option>video</option>
            </select>
          </label>
          <label>
            Tags (comma-separated)
            <input {...field("tags")} />
          </label>
        </div>
        <button type="submit" disabled={create.isPending}>
          {create.isPending ? "Publishing…" : "Publish pass"}
        </button>
      </form>
      {create.isError && <ErrorNote error={create.error} />}
      <h2>Your style passes</h2>
      {passes.isPending && <Loading what="your passes" />}
      {passes.isError && <ErrorNote error={passes.error} retry={() => passes.refetch()} />}
      {passes.data?.data.length === 0 && <Empty>You have not published a style pass yet.</Empty>}
      {archive.isError && <ErrorNote error={archive.error} />}
      {passes.data && passes.data.data.length > 0 && (
        <ul className="passes" data-testid="my-passes">
          {passes.data.data.map((p) => (
            <li key={p.id} className="card">
              <h3>{p.name}</h3>
              <p>{p.stylePrompt}</p>
              <p className="hint">
                {p.mediaType} · {credits(p.fee)} per result · {p.uses} uses · {p.status}
                {p.tags.length > 0 && ` · ${p.tags.join(", ")}`}
              </p>
              {p.status === "active" && (
                <button
                  type="button"
                  className="danger"
                  aria-label={`Archive ${p.name}`}
                  onClick={() => archive.mutate(p.id)}
                >
                  Archive
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      <TemplateForm apiKey={apiKey} />
    </section>
  );
}
