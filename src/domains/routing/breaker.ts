import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import type { BreakerSettings } from "../../ports.js";

export type { BreakerSettings } from "../../ports.js";

/**
 * A circuit breaker per channel, its state in PostgreSQL so every worker sees the same one.
 * closed: use it. open: skip it until the cooldown passes. Then one caller wins the half-open
 * probe (a conditional update); a good probe closes the circuit, a bad one opens it again.
 * While that probe is in flight everyone else is told `probing`: the upstream may well be
 * healthy again, so they wait for its outcome (or use another channel) rather than fail.
 */
export type Admission = "healthy" | "closed" | "probe" | "probing" | "open";
// healthy: closed with no failure counted, so a success has nothing to record (see router).

export async function admit(
  ctx: ServiceContext,
  channelId: string,
  settings: BreakerSettings,
): Promise<Admission> {
  const now = ctx.clock();
  const cutoff = new Date(now.getTime() - settings.cooldownMs);
  const probeCutoff = new Date(
    now.getTime() - Math.max(settings.cooldownMs, settings.probeTimeoutMs ?? 0),
  );
  // A half-open probe older than its time limit is presumed dead, and may be taken again.
  const { rows } = await ctx.db.execute<{ state: string; probe: boolean; failures: number }>(sql`
    with current as (select state, opened_at, updated_at, consecutive_failures from channel_health where channel_id = ${channelId}),
    taken as (
      update channel_health set state = 'half_open', updated_at = ${now}
      where channel_id = ${channelId}
        and ((state = 'open' and opened_at <= ${cutoff}) or (state = 'half_open' and updated_at <= ${probeCutoff}))
      returning true as probe)
    select coalesce((select state::text from current), 'closed') as state,
           coalesce((select probe from taken), false) as probe,
           coalesce((select consecutive_failures from current), 0)::int as failures`);
  const row = rows[0];
  if (row?.probe) return "probe";
  if (row?.state === "half_open") return "probing";
  if (!row || row.state === "closed") return row?.failures ? "closed" : "healthy";
  return "open";
}

/**
 * Waits while another caller's probe of the channel is in flight, and returns what the circuit
 * then admits: `closed` after a good probe, `open` after a bad one, or `probe` when the probe
 * outlived its time limit and this caller takes it over. Polls: the state is in PostgreSQL and
 * the probe may be running in any worker.
 */
export async function awaitProbe(
  ctx: ServiceContext,
  channelId: string,
  settings: BreakerSettings,
  pollMs = 200,
): Promise<Exclude<Admission, "probing">> {
  // admit hands over a probe older than its limit, so this bound is only reached when the
  // clock stands still (a test's frozen clock): then the channel is treated as open.
  const deadline =
    performance.now() + Math.max(settings.cooldownMs, settings.probeTimeoutMs ?? 0) + 10 * pollMs;
  for (;;) {
    const admission = await admit(ctx, channelId, settings);
    if (admission !== "probing") return admission;
    if (performance.now() >= deadline) return "open";
    await sleep(pollMs);
  }
}

export async function recordSuccess(ctx: ServiceContext, channelId: string): Promise<void> {
  // A good probe closes a half-open circuit; a success on a closed one clears its count. A late
  // success from a call admitted before the circuit opened changes nothing: only a probe closes.
  // Written only when something changes, so a healthy channel costs no write per call.
  await ctx.db.execute(sql`
    update channel_health set state = 'closed', consecutive_failures = 0, opened_at = null, updated_at = ${ctx.clock()}
    where channel_id = ${channelId} and (state = 'half_open' or (state = 'closed' and consecutive_failures <> 0))`);
}

/** Counts a failure; returns true when the circuit is (now) open. */
export async function recordFailure(
  ctx: ServiceContext,
  channelId: string,
  settings: BreakerSettings,
): Promise<boolean> {
  const now = ctx.clock();
  const { rows } = await ctx.db.execute<{ state: string }>(sql`
    insert into channel_health as h (channel_id, state, consecutive_failures, opened_at, updated_at)
    values (${channelId}, case when 1 >= ${settings.failureThreshold} then 'open'::circuit_state else 'closed'::circuit_state end,
            1, case when 1 >= ${settings.failureThreshold} then ${now}::timestamptz end, ${now})
    on conflict (channel_id) do update set
      consecutive_failures = h.consecutive_failures + 1,
      state = case when h.state = 'half_open' or h.consecutive_failures + 1 >= ${settings.failureThreshold}
                   then 'open'::circuit_state else h.state end,
      opened_at = case when h.state <> 'open' and (h.state = 'half_open' or h.consecutive_failures + 1 >= ${settings.failureThreshold})
                       then ${now}::timestamptz else h.opened_at end,
      updated_at = ${now}
    returning state::text`);
  return rows[0]?.state === "open";
}

export async function circuitStates(ctx: ServiceContext) {
  const { rows } = await ctx.db.execute<{
    channel_id: string;
    state: string;
    consecutive_failures: number;
  }>(
    sql`select channel_id, state::text, consecutive_failures from channel_health order by channel_id`,
  );
  return rows;
}
