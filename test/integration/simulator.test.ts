import { spawn } from "node:child_process";
import path from "node:path";
import type { Runner } from "graphile-worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWorker } from "../../src/jobs/worker.js";
import {
  createFundedCaller,
  startTestApp,
  type TestApp,
  waitForGeneration,
} from "../helpers/app.js";
import { repoRoot } from "../helpers/cli.js";

/**
 * The upstream simulator run on its own, as the README's failover demo runs it by hand
 * (`npx tsx test/simulator/upstream.ts 4010 --fault openai=error500`): faults from its flags,
 * then changed while it runs through its /__faults route.
 */
const tsx = path.join(repoRoot, "node_modules/.bin/tsx");
const script = path.join(repoRoot, "test/simulator/upstream.ts");

function startStandalone(args: string[]) {
  const child = spawn(process.execPath, [tsx, script, ...args], { cwd: repoRoot });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  const url = new Promise<string>((resolve, reject) => {
    child.stdout.on("data", () => {
      const found = /upstream simulator on (http:\/\/\S+)/.exec(output)?.[1];
      if (found) resolve(found);
    });
    child.on("close", (code) => reject(new Error(`simulator exited (${code}):\n${output}`)));
  });
  return { child, url, exited, output: () => output };
}

const openaiImage = (base: string) =>
  fetch(`${base}/openai/v1/images/generations`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer sk-sim" },
    body: JSON.stringify({ model: "gpt-image-1", prompt: "a cat" }),
  });
const falSubmit = (base: string) =>
  fetch(`${base}/fal/fal-ai/gpt-image`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt: "a cat" }),
  });
const faultsRoute = (base: string, method: string, body?: unknown) =>
  fetch(`${base}/__faults`, {
    method,
    headers: { "content-type": "application/json" },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });

describe("the upstream simulator on its own", () => {
  let sim: ReturnType<typeof startStandalone>;
  let base: string;
  let app: TestApp;
  let worker: Runner;

  beforeAll(async () => {
    sim = startStandalone(["0", "--fault", "openai=error500"]);
    base = await sim.url;
    // The README's demo: gpt-image-2 on an OpenAI-format channel, then a fal one, both simulated.
    const channels = [
      {
        id: "openai-main",
        provider: "openai",
        baseUrl: `${base}/openai`,
        apiKey: "sk-sim",
        networks: ["test"],
        models: { "gpt-image-2": "gpt-image-1" },
        priority: 0,
      },
      {
        id: "fal-backup",
        provider: "fal",
        baseUrl: `${base}/fal`,
        apiKey: "fal-sim",
        networks: ["test"],
        models: { "gpt-image-2": "fal-ai/gpt-image" },
        priority: 1,
      },
    ];
    app = await startTestApp({
      env: { LOG_LEVEL: "error", CHANNELS: JSON.stringify(channels), ROUTING_BACKOFF_MS: "1" },
    });
    worker = await startWorker(app.ctx);
  });
  afterAll(async () => {
    await worker?.stop();
    await app?.close();
    sim?.child.kill("SIGTERM");
    await sim?.exited;
  });

  it("fails the API its --fault flag names, and only that one, until /__faults clears it", async () => {
    expect(sim.output()).toContain('"byApi":{"openai":{"script":[],"always":"error500"}}');
    expect((await openaiImage(base)).status).toBe(500);
    expect((await falSubmit(base)).status).toBe(200);

    // A generation fails over from the failing channel to the healthy one.
    const caller = await createFundedCaller(app.ctx, 100n, "test");
    const submitted = await app.request("POST", "/v1/generate", {
      token: caller.key,
      json: { prompt: "a lighthouse at dusk", models: ["gpt-image-2"] },
    });
    expect(submitted.status).toBe(202);
    const done = await waitForGeneration(app, caller.key, submitted.body.generationId);
    expect(done.status).toBe("completed");
    const { routing } = done.results[0];
    expect(routing).toMatchObject({ upstream: "fal-backup", failover: true });
    expect(
      routing.attempts.map((a: { channel: string; outcome: string }) => [a.channel, a.outcome]),
    ).toEqual([
      ["openai-main", "upstream_500"],
      ["openai-main", "upstream_500"],
      ["openai-main", "upstream_500"],
      ["fal-backup", "ok"],
    ]);

    const cleared = await faultsRoute(base, "DELETE");
    expect(await cleared.json()).toEqual({ script: [], always: "ok", byApi: {}, latencyMs: 0 });
    expect((await openaiImage(base)).status).toBe(200);
  });

  it("takes faults for the next requests over POST /__faults, and refuses a bad one", async () => {
    const set = await faultsRoute(base, "POST", { provider: "fal", fault: "rateLimit", count: 2 });
    expect(set.status).toBe(200);
    expect(await set.json()).toMatchObject({
      byApi: { fal: { script: ["rateLimit", "rateLimit"] } },
    });
    const limited = await falSubmit(base);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("1");
    expect((await falSubmit(base)).status).toBe(429);
    expect((await falSubmit(base)).status).toBe(200);
    expect((await openaiImage(base)).status).toBe(200);

    const bad = await faultsRoute(base, "POST", { provider: "midjourney", fault: "explode" });
    expect(bad.status).toBe(400);
    const refusal = (await bad.json()) as { error: { message: string } };
    expect(refusal.error.message).toContain("provider");
    const state = await (await faultsRoute(base, "GET")).json();
    expect(state).toEqual({
      script: [],
      always: "ok",
      byApi: { fal: { script: [] } },
      latencyMs: 0,
    });
  });

  it("refuses a --fault flag it does not understand", async () => {
    const wrong = startStandalone(["0", "--fault", "openai=explode"]);
    await expect(wrong.url).rejects.toThrow();
    expect(await wrong.exited).toBe(2);
    expect(wrong.output()).toContain("--fault openai=explode: expected");
  });
});
