import { useModels } from "../catalog";
import { Link } from "../router";
import { Empty, ErrorNote, Loading } from "../ui/states";

/** One model: limits, capabilities, price table and aliases. Public. */
export function ModelScreen({ id }: { id: string }) {
  const models = useModels();
  if (models.isPending) return <Loading what="the model" />;
  if (models.isError) return <ErrorNote error={models.error} retry={() => models.refetch()} />;
  const model = models.data.find((m) => m.id === id || m.aliases.includes(id));
  if (!model)
    return (
      <Empty>
        No model <code>{id}</code>. <Link to="/pricing">See every model</Link>.
      </Empty>
    );
  const c = model.capabilities;
  return (
    <section aria-labelledby="model-title">
      <p>
        <Link to="/pricing">← Pricing</Link>
      </p>
      <h1 id="model-title">{model.name}</h1>
      <dl className="facts">
        <dt>Id</dt>
        <dd>
          <code>{model.id}</code>
        </dd>
        <dt>Type</dt>
        <dd>{model.type}</dd>
        <dt>Aliases</dt>
        <dd>{model.aliases.length ? model.aliases.join(", ") : "none"}</dd>
        <dt>Resolutions</dt>
        <dd>{c.resolutions.join(", ")}</dd>
        <dt>Aspect ratios</dt>
        <dd>{c.aspectRatios.join(", ")}</dd>
        {c.durations && (
          <>
            <dt>Durations</dt>
            <dd>{c.durations.map((d) => `${d} s`).join(", ")}</dd>
          </>
        )}
        {c.fps && (
          <>
            <dt>Frame rates</dt>
            <dd>
              {c.fps.options.join(", ")} fps (default {c.fps.default})
            </dd>
          </>
        )}
        <dt>Longest prompt</dt>
        <dd>{model.limits.maxPromptLength.toLocaleString("en-US")} characters</dd>
        <dt>Reference images</dt>
        <dd>up to {model.limits.maxReferenceImages}</dd>
      </dl>
      <h2>Prices</h2>
      <table data-testid="price-table">
        <thead>
          <tr>
            <th>Resolution</th>
            {c.durations && <th>Duration</th>}
            <th>Credits</th>
          </tr>
        </thead>
        <tbody>
          {model.pricing.table.map((r) => (
            <tr key={`${r.resolution}-${r.duration ?? ""}`}>
              <td>{r.resolution}</td>
              {c.durations && <td>{r.duration} s</td>}
              <td>{r.credits}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
