import { describe, expect, it } from "vitest";
import type { Channel } from "../../src/domains/routing/channels.js";
import {
  applyPreferences,
  triedChannels,
  unknownChannels,
} from "../../src/domains/routing/preferences.js";

const channel = (id: string): Channel => ({
  id,
  provider: "sandbox",
  networks: ["test"],
  models: "*",
  priority: 0,
  weight: 1,
});
const [a, b, c] = [channel("a"), channel("b"), channel("c")];
const ids = (list: Channel[]) => list.map((x) => x.id);

describe("applyPreferences", () => {
  it("keeps the default order without preferences", () => {
    expect(ids(applyPreferences([a, b, c], undefined))).toEqual(["a", "b", "c"]);
  });
  it("puts ordered channels first, then the rest in default order", () => {
    expect(ids(applyPreferences([a, b, c], { order: ["c"] }))).toEqual(["c", "a", "b"]);
  });
  it("filters by only and ignore", () => {
    expect(ids(applyPreferences([a, b, c], { only: ["a", "b"], ignore: ["a"] }))).toEqual(["b"]);
  });
  it("sorts by latency, unmeasured last, and by cost", () => {
    const latency = { a: 300, c: 100 } as Record<string, number>;
    expect(
      ids(applyPreferences([a, b, c], { sort: "latency" }, { latencyMs: (x) => latency[x.id] })),
    ).toEqual(["c", "a", "b"]);
    const cost = { a: 5, b: 1, c: 5 } as Record<string, number>;
    expect(
      ids(applyPreferences([a, b, c], { sort: "price" }, { cost: (x) => cost[x.id] ?? 0 })),
    ).toEqual(["b", "a", "c"]);
  });
  it("tries only the first channel without failover", () => {
    const noFailover = { order: ["b"], allowFailover: false };
    expect(ids(triedChannels(applyPreferences([a, b, c], noFailover), noFailover))).toEqual(["b"]);
    expect(ids(triedChannels(applyPreferences([a, b, c], { order: ["b"] }), {}))).toEqual([
      "b",
      "a",
      "c",
    ]);
  });
  it("names the unknown ids", () => {
    expect(unknownChannels({ order: ["a", "x"], ignore: ["y", "x"] }, ["a", "b"])).toEqual([
      "x",
      "y",
    ]);
    // An ignored channel that serves none of the models is harmless, if it exists at all.
    expect(
      unknownChannels({ only: ["a"], ignore: ["c", "typo"] }, ["a", "b"], ["a", "b", "c"]),
    ).toEqual(["typo"]);
  });
});
