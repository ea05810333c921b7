import { usagePrice, useModels, useUsageModels } from "../catalog";
import { credits } from "../money";
import { PACK_IDS, PACKS, TIER_LIMITS } from "../packs";
import { Link } from "../router";
import { Empty, ErrorNote, Loading } from "../ui/states";

/** Public: no sign-in. Packs, what each tier allows, and every model's price. */
export function PricingScreen() {
  const models = useModels();
  const usage = useUsageModels();
  return (
    <section aria-labelledby="pricing-title">
      <h1 id="pricing-title">Pricing</h1>
      <p>
        1 credit = $0.01. Credits never expire. Packs are paid in USDC; paying per call from a
        wallet costs exactly $0.01 a credit.
      </p>
      <h2>Credit packs</h2>
      <div className="cards">
        {PACK_IDS.map((id) => (
          <div className="card pack" key={id} data-pack={id}>
            <h3>{id[0]?.toUpperCase() + id.slice(1)}</h3>
            <p className="big">${PACKS[id].usd}</p>
            <p>{credits(PACKS[id].credits)}</p>
            <p>
              Membership tier: <strong>{PACKS[id].tier}</strong>
            </p>
          </div>
        ))}
      </div>
      <h2>Membership tiers</h2>
      <p className="hint">
        Requests per minute, per account and network. The best pack bought sets it.
      </p>
      <table>
        <thead>
          <tr>
            <th>Tier</th>
            <th>Generate</th>
            <th>Batch</th>
            <th>Poll</th>
          </tr>
        </thead>
        <tbody>
          {Object.entries(TIER_LIMITS).map(([tier, l]) => (
            <tr key={tier}>
              <td>{tier}</td>
              <td>{l.generate}</td>
              <td>{l.batch}</td>
              <td>{l.poll}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Models</h2>
      {models.isPending && <Loading what="the catalog" />}
      {models.isError && <ErrorNote error={models.error} retry={() => models.refetch()} />}
      {models.data?.length === 0 && <Empty>No models are offered.</Empty>}
      {models.data && models.data.length > 0 && (
        <div className="scroll">
          <table data-testid="model-prices">
            <thead>
              <tr>
                <th>Model</th>
                <th>Type</th>
                <th>Price per unit</th>
              </tr>
            </thead>
            <tbody>
              {models.data.map((m) => (
                <tr key={m.id}>
                  <td>
                    <Link to={`/models/${encodeURIComponent(m.id)}`}>{m.name}</Link>{" "}
                    <code>{m.id}</code>
                  </td>
                  <td>{m.type}</td>
                  <td>
                    {m.pricing.table
                      .map(
                        (r) =>
                          `${r.resolution}${r.duration !== undefined ? ` ${r.duration}s` : ""}: ${r.credits}`,
                      )
                      .join(" · ")}{" "}
                    credits {m.type === "video" ? "per video" : "per image"}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h2>Text and audio models</h2>
      <p className="hint">
        Billed by what a call uses: tokens, characters, seconds or clips, rounded up once per call
        to 1/10,000 credit.
      </p>
      {usage.isPending && <Loading what="the catalog" />}
      {usage.isError && <ErrorNote error={usage.error} retry={() => usage.refetch()} />}
      {usage.data && usage.data.length > 0 && (
        <div className="scroll">
          <table data-testid="usage-prices">
            <thead>
              <tr>
                <th>Model</th>
                <th>Type</th>
                <th>Price</th>
              </tr>
            </thead>
            <tbody>
              {usage.data.map((m) => (
                <tr key={m.id}>
                  <td>
                    {m.name} <code>{m.id}</code>
                  </td>
                  <td>{m.kind ?? m.type}</td>
                  <td>{usagePrice(m)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
