import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api";
import { useSignedIn } from "../auth";
import { credits } from "../money";
import type { MediaType, Page, StylePass, Upload } from "../types";
import { Empty, ErrorNote, Loading } from "../ui/states";
import { AnalyticsPanel } from "./Analytics";
import { PassCard } from "./PassCard";
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
  const [preview, setPreview] = useState<{ id: string; url: string } | null>(null);
  const uploadPreview = useMutation({
    mutationFn: async (file: File) => {
      const body = new FormData();
      body.append("file", file);
      const up = await api<Upload>("/v1/upload-image", { token: apiKey, form: body });
      return { id: up.id, url: URL.createObjectURL(file) };
    },
    onSuccess: setPreview,
  });
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
          ...(preview && { previewImageIds: [preview.id] }),
        },
      }),
    onSuccess: () => {
      setForm(EMPTY_FORM);
      setPreview(null);
      refresh();
    },
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
        <label>
          Preview image (optional, PNG, JPEG or WebP)
          <input
            type="file"
            accept="image/png,image/jpeg,image/webp"
            onChange={(e) => {
              const file = e.target.files?.[0];
              if (file) uploadPreview.mutate(file);
            }}
          />
        </label>
        {uploadPreview.isPending && <Loading what="the preview" />}
        {uploadPreview.isError && <ErrorNote error={uploadPreview.error} />}
        {preview && <img className="preview" src={preview.url} alt="Preview of the new pass" />}
        <button type="submit" disabled={create.isPending || uploadPreview.isPending}>
          {create.isPending ? "Publishing…" : "Publish pass"}
        </button>
      </form>
      {create.isError && <ErrorNote error={create.error} />}
      <h2>Your style passes</h2>
      {passes.isPending && <Loading what="your passes" />}
      {passes.isError && <ErrorNote error={passes.error} retry={() => passes.refetch()} />}
      {passes.data?.data.length === 0 && <Empty>You have not published a style pass yet.</Empty>}
      {passes.data && passes.data.data.length > 0 && (
        <ul className="passes" data-testid="my-passes">
          {passes.data.data.map((p) => (
            <PassCard key={p.id} apiKey={apiKey} pass={p} />
          ))}
        </ul>
      )}
      <TemplateForm apiKey={apiKey} />
    </section>
  );
}
