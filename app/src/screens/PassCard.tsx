import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api";
import { credits } from "../money";
import type { StylePass } from "../types";
import { ErrorNote } from "../ui/states";

/** One of the creator's passes: shown, edited in place (PATCH), or archived. */
export function PassCard({ apiKey, pass }: { apiKey: string; pass: StylePass }) {
  const queryClient = useQueryClient();
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState({
    name: pass.name,
    stylePrompt: pass.stylePrompt,
    fee: String(pass.fee),
  });
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["passes"] });
  const save = useMutation({
    mutationFn: () =>
      api<StylePass>(`/v1/passes/${pass.id}`, {
        token: apiKey,
        method: "PATCH",
        json: { name: draft.name, stylePrompt: draft.stylePrompt, fee: Number(draft.fee) },
      }),
    onSuccess: () => {
      setEditing(false);
      refresh();
    },
  });
  const archive = useMutation({
    mutationFn: () => api(`/v1/passes/${pass.id}/archive`, { token: apiKey, method: "POST" }),
    onSuccess: refresh,
  });
  const field = (k: keyof typeof draft) => ({
    value: draft[k],
    onChange: (e: { target: { value: string } }) =>
      setDraft((d) => ({ ...d, [k]: e.target.value })),
  });

  return (
    <li className="card" data-pass-id={pass.id}>
      {pass.previewImageUrls[0] && (
        <img className="preview" src={pass.previewImageUrls[0]} alt={`Preview of ${pass.name}`} />
      )}
      {editing ? (
        <form
          className="stack"
          onSubmit={(e) => {
            e.preventDefault();
            save.mutate();
          }}
        >
          <label>
            Pass name
            <input required maxLength={100} {...field("name")} />
          </label>
          <label>
            Pass style prompt
            <textarea required rows={2} {...field("stylePrompt")} />
          </label>
          <label>
            Pass fee (credits)
            <input type="number" min={0} step={1} required {...field("fee")} />
          </label>
          <div className="row">
            <button type="submit" disabled={save.isPending}>
              Save changes
            </button>
            <button type="button" className="link" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </div>
        </form>
      ) : (
        <>
          <h3>{pass.name}</h3>
          <p>{pass.stylePrompt}</p>
          <p className="hint">
            {pass.mediaType} · {credits(pass.fee)} per result · {pass.uses} uses · {pass.status}
            {pass.tags.length > 0 && ` · ${pass.tags.join(", ")}`}
          </p>
          {pass.status === "active" && (
            <div className="row">
              <button
                type="button"
                aria-label={`Edit ${pass.name}`}
                onClick={() => setEditing(true)}
              >
                Edit
              </button>
              <button
                type="button"
                className="danger"
                aria-label={`Archive ${pass.name}`}
                onClick={() => archive.mutate()}
              >
                Archive
              </button>
            </div>
          )}
        </>
      )}
      {save.isError && <ErrorNote error={save.error} />}
      {archive.isError && <ErrorNote error={archive.error} />}
    </li>
  );
}
