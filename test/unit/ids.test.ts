import { describe, expect, it } from "vitest";
import { newId } from "../../src/lib/ids.js";

describe("newId", () => {
  it("makes prefixed lower-case ULIDs, distinct across many refills of the random pool", () => {
    // 3,000 ids draw 48,000 random bytes: the 4 KiB pool is refilled about a dozen times.
    const ids = Array.from({ length: 3000 }, () => newId("gen"));
    for (const id of ids) expect(id).toMatch(/^gen_[0-9a-hjkmnp-tv-z]{26}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("spreads the random part evenly over the 32 symbols", () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      for (const c of newId("req").slice(-16)) counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    // 32,000 symbols, 1,000 expected each: a stuck or biased source falls far outside.
    expect(counts.size).toBe(32);
    for (const n of counts.values()) expect(n).toBeGreaterThan(800);
    for (const n of counts.values()) expect(n).toBeLessThan(1200);
  });

  it("sorts by creation time", async () => {
    const first = newId("acc");
    await new Promise((r) => setTimeout(r, 2));
    expect(newId("acc") > first).toBe(true);
  });
});
