import type { MetricValueWithName } from "prom-client";
import type { AppContext } from "../../src/context.js";

/** How many group-committed statements of this kind carried more than one call, so far. */
export async function groupsOfMany(ctx: AppContext, statement: string): Promise<number> {
  const metric = await ctx.metrics.registry.getSingleMetric("polyforge_group_commit_size")?.get();
  const values = (metric?.values ?? []) as Array<MetricValueWithName<string>>;
  const buckets = values.filter(
    (v) =>
      v.metricName === "polyforge_group_commit_size_bucket" && v.labels.statement === statement,
  );
  const upTo1 = buckets.find((v) => v.labels.le === 1)?.value ?? 0;
  const all = buckets.find((v) => v.labels.le === "+Inf")?.value ?? 0;
  return all - upTo1;
}
