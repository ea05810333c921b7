import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api";
import { fillIn, variablesIn } from "../templates";
import type { Page, Template } from "../types";
import { Empty, ErrorNote, Loading } from "../ui/states";

interface VariableDraft {
  default: string;
  allowed: string;
}

/** Save a prompt template: its variables come from the text, each with a default and allowed values. */
export function TemplateForm({ apiKey }: { apiKey: string }) {
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const [text, setText] = useState("");
  const [drafts, setDrafts] = useState<Record<string, VariableDraft>>({});
  const names = variablesIn(text);
  const draftOf = (v: string): VariableDraft => drafts[v] ?? { default: "", allowed: "" };
  const allowedOf = (v: string) =>
    draftOf(v)
      .allowed.split(",")
      .map((a) => a.trim())
      .filter(Boolean);

  const templates = useQuery({
    queryKey: ["templates", apiKey, "mine"],
    queryFn: () => api<Page<Template>>("/v1/templates?creator=me&limit=100", { token: apiKey }),
  });
  const create = useMutation({
    mutationFn: () =>
      api<Template>("/v1/templates", {
        token: apiKey,
        json: {
          name,
          text,
          variables: Object.fromEntries(
            names.map((v) => {
              const allowed = allowedOf(v);
              return [
                v,
                {
                  ...(draftOf(v).default && { default: draftOf(v).default }),
                  ...(allowed.length > 0 && { allowed }),
                },
              ];
            }),
          ),
        },
      }),
    onSuccess: () => {
      setName("");
      setText("");
      setDrafts({});
      queryClient.invalidateQueries({ queryKey: ["templates"] });
    },
  });
  const preview = fillIn(
    text,
    Object.fromEntries(names.map((v) => [v, draftOf(v).default || allowedOf(v)[0]])),
  );

  return (
    <>
      <h2>New prompt template</h2>
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <label>
          Template name
          <input required maxLength={80} value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <label>
          Text, with {"{{variables}}"}
          <textarea
            required
            rows={2}
            maxLength={4000}
            value={text}
            onChange={(e) => setText(e.target.value)}
          />
        </label>
        {names.length > 0 && (
          <fieldset>
            <legend>Variables</legend>
            {names.map((v) => (
              <div className="row" key={v} data-variable={v}>
                <label>
                  {v}: default
                  <input
                    value={draftOf(v).default}
                    onChange={(e) =>
                      setDrafts((d) => ({ ...d, [v]: { ...draftOf(v), default: e.target.value } }))
                    }
                  />
                </label>
                <label>
                  {v}: allowed values (comma-separated, empty for any)
                  <input
                    value={draftOf(v).allowed}
                    onChange={(e) =>
                      setDrafts((d) => ({ ...d, [v]: { ...draftOf(v), allowed: e.target.value } }))
                    }
                  />
                </label>
              </div>
            ))}
          </fieldset>
        )}
        {text && (
          <p>
            Composed prompt: <q data-testid="template-preview">{preview}</q>
          </p>
        )}
        <button type="submit" disabled={create.isPending}>
          {create.isPending ? "Saving…" : "Save template"}
        </button>
      </form>
      {create.isError && <ErrorNote error={create.error} />}
      <h2>Your templates</h2>
      {templates.isPending && <Loading what="your templates" />}
      {templates.isError && <ErrorNote error={templates.error} retry={() => templates.refetch()} />}
      {templates.data?.data.length === 0 && <Empty>You have not saved a template yet.</Empty>}
      {templates.data && templates.data.data.length > 0 && (
        <ul className="passes" data-testid="my-templates">
          {templates.data.data.map((t) => (
            <li key={t.id} className="card">
              <h3>{t.name}</h3>
              <p>{t.text}</p>
              <p className="hint">
                {Object.keys(t.variables).length} variable
                {Object.keys(t.variables).length === 1 ? "" : "s"}
              </p>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
