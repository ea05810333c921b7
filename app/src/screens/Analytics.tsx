import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api";
import { Empty, ErrorNote, Loading } from "../ui/states";

interface DayStats {
  date: string;
  uses: number;
  uniqueUsers: number;
  earned: number;
}

interface Analytics {
  range: "7d" | "30d";
  from: string;
  to: string;
  passes: { passId: string; name: string; uses: number; earned: number; days: DayStats[] }[];
}

/** Every pass's numbers added up per UTC day (the API gives every day of the range). */
function perDay(a: Analytics): DayStats[] {
  const days = new Map<string, DayStats>();
  for (const pass of a.passes)
    for (const d of pass.days) {
      const sum = days.get(d.date) ?? { date: d.date, uses: 0, uniqueUsers: 0, earned: 0 };
      days.set(d.date, {
        date: d.date,
        uses: sum.uses + d.uses,
        uniqueUsers: sum.uniqueUsers + d.uniqueUsers,
        earned: sum.earned + d.earned,
      });
    }
  return [...days.values()].sort((x, y) => x.date.localeCompare(y.date));
}

/**
 * A bar per day, drawn as plain SVG: one small chart needs no charting library. The same
 * numbers follow in a table, for screen readers and for exact values.
 */
function Bars({
  days,
  field,
  label,
}: {
  days: DayStats[];
  field: "uses" | "earned";
  label: string;
}) {
  const max = Math.max(1, ...days.map((d) => d[field]));
  const width = 100 / days.length;
  return (
    <figure className="chart">
      <svg
        viewBox="0 0 100 40"
        preserveAspectRatio="none"
        role="img"
        aria-label={`${label} per day`}
      >
        {days.map((d, i) => {
          const h = (d[field] / max) * 38;
          return (
            <rect
              key={d.date}
              data-testid={`bar-${field}`}
              x={i * width + width * 0.1}
              y={40 - h}
              width={width * 0.8}
              height={Math.max(h, 0.4)}
            >
              <title>{`${d.date}: ${d[field]}`}</title>
            </rect>
          );
        })}
      </svg>
      <figcaption>
        {label}: {days.reduce((s, d) => s + d[field], 0)} from {days[0]?.date} to{" "}
        {days.at(-1)?.date}
      </figcaption>
    </figure>
  );
}

export function AnalyticsPanel({ apiKey }: { apiKey: string }) {
  const [range, setRange] = useState<"7d" | "30d">("7d");
  const analytics = useQuery({
    queryKey: ["analytics", apiKey, range],
    queryFn: () => api<Analytics>(`/v1/profile/analytics?range=${range}`, { token: apiKey }),
  });
  const days = analytics.data ? perDay(analytics.data) : [];
  return (
    <div>
      <h2>Analytics</h2>
      <fieldset className="row">
        <legend>Range</legend>
        {(["7d", "30d"] as const).map((r) => (
          <label key={r} className="inline">
            <input type="radio" name="range" checked={range === r} onChange={() => setRange(r)} />
            {r === "7d" ? "7 days" : "30 days"}
          </label>
        ))}
      </fieldset>
      {analytics.isPending && <Loading what="analytics" />}
      {analytics.isError && <ErrorNote error={analytics.error} retry={() => analytics.refetch()} />}
      {analytics.data && analytics.data.passes.length === 0 && (
        <Empty>Publish a style pass to see its uses and earnings here.</Empty>
      )}
      {days.length > 0 && (
        <>
          <div className="charts">
            <Bars days={days} field="uses" label="Uses" />
            <Bars days={days} field="earned" label="Credits earned" />
          </div>
          <details>
            <summary>The numbers</summary>
            <table>
              <thead>
                <tr>
                  <th>Day</th>
                  <th>Uses</th>
                  <th>Users</th>
                  <th>Earned</th>
                </tr>
              </thead>
              <tbody>
                {days.map((d) => (
                  <tr key={d.date}>
                    <td>{d.date}</td>
                    <td>{d.uses}</td>
                    <td>{d.uniqueUsers}</td>
                    <td>{d.earned}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
        </>
      )}
    </div>
  );
}
