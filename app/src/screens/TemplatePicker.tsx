import type { Template } from "../types";
import { ErrorNote } from "../ui/states";

/** Pick a prompt template and give its variables values (a default applies where left empty). */
export function TemplatePicker({
  templates,
  error,
  templateId,
  values,
  onPick,
  onValue,
}: {
  templates: Template[];
  error: unknown;
  templateId: string;
  values: Record<string, string>;
  onPick: (id: string) => void;
  onValue: (name: string, value: string) => void;
}) {
  const template = templates.find((t) => t.id === templateId);
  return (
    <fieldset>
      <legend>Template</legend>
      {error !== null && <ErrorNote error={error} />}
      <label>
        Prompt template
        <select value={templateId} onChange={(e) => onPick(e.target.value)}>
          <option value="">none</option>
          {templates.map((t) => (
            <option key={t.id} value={t.id}>
              {t.name}
            </option>
          ))}
        </select>
      </label>
      {template && <p className="hint">{template.text}</p>}
      {template &&
        Object.entries(template.variables).map(([name, v]) =>
          v.allowed ? (
            <label key={name}>
              {name}
              <select value={values[name] ?? ""} onChange={(e) => onValue(name, e.target.value)}>
                <option value="">{v.default ? `default: ${v.default}` : "choose…"}</option>
                {v.allowed.map((a) => (
                  <option key={a}>{a}</option>
                ))}
              </select>
            </label>
          ) : (
            <label key={name}>
              {name}
              <input
                value={values[name] ?? ""}
                maxLength={v.maxLength}
                placeholder={v.default ?? ""}
                onChange={(e) => onValue(name, e.target.value)}
              />
            </label>
          ),
        )}
    </fieldset>
  );
}
