import { describe, expect, it } from "vitest";
import { GroupCommit } from "../../src/db/group-commit.js";

/** A runMany that answers once released, recording the groups it was given. */
function statement() {
  const groups: number[][] = [];
  let release: () => void = () => {};
  const runMany = async (inputs: number[]) => {
    groups.push(inputs);
    await new Promise<void>((resolve) => {
      release = resolve;
    });
    if (inputs.includes(13)) throw new Error("one bad input fails the statement");
    return inputs.map((n) => n * 10);
  };
  return { groups, runMany, release: () => release() };
}

describe("GroupCommit", () => {
  it("sends a call at once when nothing is in flight, and groups the calls that arrive meanwhile", async () => {
    const s = statement();
    const group = new GroupCommit(s.runMany, async (n: number) => n * 10, {
      maxBatch: 256,
      maxInFlight: 1,
    });
    const first = group.submit(1);
    await Promise.resolve();
    expect(s.groups).toEqual([[1]]);
    const rest = [2, 3, 4].map((n) => group.submit(n));
    s.release();
    expect(await first).toBe(10);
    await new Promise((r) => setImmediate(r));
    expect(s.groups).toEqual([[1], [2, 3, 4]]);
    s.release();
    expect(await Promise.all(rest)).toEqual([20, 30, 40]);
  });

  it("retries each call alone when the grouped statement fails, so one bad call fails only itself", async () => {
    const s = statement();
    const alone: number[] = [];
    const group = new GroupCommit(
      s.runMany,
      async (n: number) => {
        alone.push(n);
        if (n === 13) throw new Error("bad input");
        return n * 10;
      },
      { maxBatch: 256, maxInFlight: 1 },
    );
    const blocker = group.submit(0);
    const calls = [12, 13, 14].map((n) =>
      group.submit(n).then(
        (v) => v,
        (e: Error) => e.message,
      ),
    );
    s.release();
    await blocker;
    await new Promise((r) => setImmediate(r));
    s.release();
    expect(await Promise.all(calls)).toEqual([120, "bad input", 140]);
    expect(alone.sort()).toEqual([12, 13, 14]);
  });

  it("reports the size of each group that went as one statement", async () => {
    const sizes: number[] = [];
    const group = new GroupCommit(
      async (inputs: number[]) => inputs,
      async (n: number) => n,
      { maxBatch: 2, maxInFlight: 1, onGroup: (size) => sizes.push(size) },
    );
    await Promise.all([1, 2, 3, 4, 5].map((n) => group.submit(n)));
    expect(sizes).toEqual([1, 2, 2]);
  });
});
