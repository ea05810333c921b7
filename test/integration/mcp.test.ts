import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { Runner } from "graphile-worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWorker } from "../../src/jobs/worker.js";
import { createFundedCaller, startTestApp, type TestApp } from "../helpers/app.js";
import { cliEnv, repoRoot } from "../helpers/cli.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";

/** The official MCP client against a running API on the sandbox models, over both transports. */
let app: TestApp;
let worker: Runner;

beforeAll(async () => {
  app = await startTestApp();
  worker = await startWorker(app.ctx);
});

afterAll(async () => {
  await worker?.stop();
  await app?.close();
});

const transports: Record<string, (key: string) => Transport> = {
  stdio: (key) =>
    new StdioClientTransport({
      command: process.execPath,
      args: [path.join(repoRoot, "bin/polyforge.js"), "mcp"],
      env: cliEnv({ POLYFORGE_API_URL: app.url, POLYFORGE_API_KEY: key }) as Record<string, string>,
      stderr: "pipe",
    }),
  "Streamable HTTP": (key) =>
    new StreamableHTTPClientTransport(new URL(`${app.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
    }),
};

async function connect(kind: string, key: string) {
  const client = new Client({ name: "polyforge-test", version: "1.0.0" });
  await client.connect((transports[kind] as (key: string) => Transport)(key));
  return client;
}

// biome-ignore lint/suspicious/noExplicitAny: tests read structured content field by field.
type Structured = any;

describe.each(Object.keys(transports))("MCP over %s", (kind) => {
  let client: Client;
  let key: string;

  beforeAll(async () => {
    ({ key } = await createFundedCaller(app.ctx, 1_000n));
    client = await connect(kind, key);
  });

  afterAll(async () => {
    await client?.close();
  });

  it("lists the tools with their schemas and annotations", async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([
      "generate_audio",
      "generate_image",
      "generate_text",
      "generate_video",
      "get_balance",
      "get_generation",
      "list_models",
    ]);
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    expect(byName.generate_image?.inputSchema.required).toEqual(["models"]);
    expect(byName.generate_image?.outputSchema?.properties).toHaveProperty("results");
    expect(byName.generate_image?.annotations).toMatchObject({
      readOnlyHint: false,
      destructiveHint: false,
    });
    expect(byName.generate_video?.inputSchema.required).toContain("duration");
    expect(byName.generate_video?.inputSchema.properties).toHaveProperty("fps");
    expect(byName.generate_image?.inputSchema.properties).not.toHaveProperty("fps");
    for (const name of ["generate_image", "generate_video", "generate_audio", "generate_text"]) {
      expect(byName[name]?.inputSchema.properties).toHaveProperty("routing.properties.sort");
    }
    expect(byName.get_balance?.annotations?.readOnlyHint).toBe(true);
    expect(byName.list_models?.annotations?.readOnlyHint).toBe(true);
  });

  it("generate_text answers the reply with its usage, and the balance falls by its cost", async () => {
    const before = (await client.callTool({ name: "get_balance", arguments: {} }))
      .structuredContent as Structured;
    const result = await client.callTool({
      name: "generate_text",
      arguments: { model: "claude-haiku-4.5", prompt: "a haiku about tides", maxTokens: 200 },
    });
    expect(result.isError).toBeFalsy();
    const reply = result.structuredContent as Structured;
    expect(reply.text).toContain("a haiku about tides");
    expect(reply.usage.completionTokens).toBeGreaterThan(0);
    expect(reply.routing.upstream).toMatch(/^sandbox/);
    expect(reply.cost.charged).toBeGreaterThan(0);
    expect(reply.cost.charged).toBeLessThan(reply.cost.quoted);
    const after = (await client.callTool({ name: "get_balance", arguments: {} }))
      .structuredContent as Structured;
    expect(Math.round((before.creditBalance - after.creditBalance) * 10_000)).toBe(
      Math.round(reply.cost.charged * 10_000),
    );
    const refused = await client.callTool({
      name: "generate_text",
      arguments: { model: "gpt-image-2", prompt: "hello" },
    });
    expect(refused.isError).toBe(true);
    expect(JSON.stringify(refused.content)).toContain("model_media_mismatch");
  });

  it("generate_audio speaks: real audio content, charged exactly its quote", async () => {
    const before = (await client.callTool({ name: "get_balance", arguments: {} }))
      .structuredContent as Structured;
    const result = await client.callTool({
      name: "generate_audio",
      arguments: { model: "tts-1", prompt: "The tide comes in twice a day." },
    });
    expect(result.isError).toBeFalsy();
    const speech = result.structuredContent as Structured;
    expect(speech.kind).toBe("speech");
    const audio = (
      result.content as Array<{ type: string; data?: string; mimeType?: string }>
    ).find((c) => c.type === "audio");
    const bytes = Buffer.from(audio?.data ?? "", "base64");
    expect(bytes.subarray(0, 4).toString("latin1")).toBe("RIFF");
    expect(bytes.length).toBe(speech.speech.bytes);
    expect(audio?.mimeType).toBe(speech.speech.contentType);
    // tts-1: 70% of $15 per million characters, rounded up to the unit, for 30 characters.
    expect(speech.cost.charged).toBe(Math.ceil((30 * 10_500_000) / 1_000_000) / 10_000);
    const after = (await client.callTool({ name: "get_balance", arguments: {} }))
      .structuredContent as Structured;
    expect(Math.round((before.creditBalance - after.creditBalance) * 10_000)).toBe(
      Math.round(speech.cost.charged * 10_000),
    );
  });

  it("generate_audio makes music: waits for the clip and gives its URL and cost", async () => {
    const result = await client.callTool({
      name: "generate_audio",
      arguments: { model: "minimax-music-1.5", prompt: "a slow piano over rain", duration: 10 },
    });
    expect(result.isError).toBeFalsy();
    const clip = result.structuredContent as Structured;
    expect(clip.kind).toBe("clip");
    expect(clip.clip).toMatchObject({ status: "completed", done: true });
    expect(clip.clip.results[0].url).toMatch(/\/v1\/download\?id=gen_/);
    // 70% of $0.03 a clip.
    expect(clip.cost).toMatchObject({ quoted: 2.1, charged: 2.1, refunded: 0 });
  });

  it("generates with two models, reports progress, and the balance falls by the cost", async () => {
    const before = (await client.callTool({ name: "get_balance", arguments: {} }))
      .structuredContent as Structured;
    const progress: number[] = [];
    const result = await client.callTool(
      {
        name: "generate_image",
        arguments: {
          prompt: "a cyberpunk portrait",
          models: ["gpt-image-2", "doubao-seedream-4.5"],
          aspectRatio: "16:9",
          resolution: "2K",
        },
      },
      undefined,
      { onprogress: (p) => void progress.push(p.progress) },
    );
    expect(result.isError).toBeFalsy();
    const generation = result.structuredContent as Structured;
    expect(generation).toMatchObject({ status: "completed", done: true });
    expect(generation.results).toHaveLength(2);
    for (const r of generation.results) {
      expect(r.url).toMatch(/\/v1\/download\?id=gen_/);
      expect(r.routing.upstream).toMatch(/^sandbox/);
      expect(r.cost).toBeGreaterThan(0);
    }
    // At least one notification (0 at submit, then each rise up to 100), never going back.
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress.every((p) => p >= 0 && p <= 100)).toBe(true);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);

    const after = (await client.callTool({ name: "get_balance", arguments: {} }))
      .structuredContent as Structured;
    expect(before.creditBalance - after.creditBalance).toBe(generation.cost.charged);
    expect(generation.cost.charged).toBe(generation.cost.quoted);

    const again = await client.callTool({
      name: "get_generation",
      arguments: { ids: [generation.generationId, "gen_01jdzzzzzzzzzzzzzzzzzzzzzz"] },
    });
    expect(Object.keys((again.structuredContent as Structured).generations)).toEqual([
      generation.generationId,
    ]);
    expect(
      (again.structuredContent as Structured).generations[generation.generationId].generationId,
    ).toBe(generation.generationId);
    expect((again.structuredContent as Structured).notFound).toEqual([
      "gen_01jdzzzzzzzzzzzzzzzzzzzzzz",
    ]);

    // Once retention deleted the outputs, the tool says so rather than handing out a dead URL.
    await app.ctx.pool.query(
      "update generation_results set output_key = null, output_expired_at = now() where generation_id = $1",
      [generation.generationId],
    );
    const expired = await client.callTool({
      name: "get_generation",
      arguments: { ids: [generation.generationId] },
    });
    for (const r of (expired.structuredContent as Structured).generations[generation.generationId]
      .results) {
      expect(r.url).toBeNull();
      expect(new Date(r.expiredAt).getTime()).toBeGreaterThan(0);
    }
  });

  it("generates a video", async () => {
    const result = await client.callTool({
      name: "generate_video",
      arguments: { prompt: "waves at night", models: ["sora-2-preview"], duration: 4 },
    });
    expect(result.isError).toBeFalsy();
    const generation = result.structuredContent as Structured;
    expect(generation.status).toBe("completed");
    expect(generation.results[0].url).toMatch(/\/v1\/download\?id=gen_/);
    // Unasked, the model's own frame rate (Sora: 30).
    expect(generation.results[0].fps).toBe(30);
  });

  it("generates a video at a frame rate the model offers, and refuses one it does not", async () => {
    const result = await client.callTool({
      name: "generate_video",
      arguments: { prompt: "a kite", models: ["kling-v2-6"], duration: 5, fps: 30 },
    });
    expect(result.isError).toBeFalsy();
    const generation = result.structuredContent as Structured;
    expect(generation).toMatchObject({ status: "completed", cost: { charged: 56 } });
    expect(generation.results[0].fps).toBe(30);
    const refused = await client.callTool({
      name: "generate_video",
      arguments: { prompt: "a kite", models: ["kling-v2-6"], duration: 5, fps: 60 },
    });
    expect(refused.isError).toBe(true);
    expect((refused.content as Array<{ text: string }>)[0]?.text).toBe(
      "invalid_fps: kling-v2-6 renders at 24, 30 fps, not 60.",
    );
  });

  it("returns the id and status when the wait runs out", async () => {
    const result = await client.callTool({
      name: "generate_image",
      arguments: { prompt: "later", models: ["z-image-turbo"], waitSeconds: 0 },
    });
    const generation = result.structuredContent as Structured;
    expect(generation.done).toBe(false);
    expect(generation.generationId).toMatch(/^gen_/);
    expect(["pending", "processing"]).toContain(generation.status);
  });

  it("generates with a template and a style pass, whose creator earns the royalty", async () => {
    const creator = await createFundedCaller(app.ctx, 1n);
    const pass = await app.request("POST", "/v1/passes", {
      token: creator.key,
      json: { name: "Ink", stylePrompt: "ink wash", fee: 5 },
    });
    const template = await app.request("POST", "/v1/templates", {
      token: creator.key,
      json: { name: "Sea", text: "a {{mood}} sea", variables: { mood: {} } },
    });
    const result = await client.callTool({
      name: "generate_image",
      arguments: {
        templateId: template.body.id,
        templateVariables: { mood: "stormy" },
        stylePassIds: [pass.body.id],
        models: ["z-image-turbo"],
      },
    });
    expect(result.isError).toBeFalsy();
    const generation = result.structuredContent as Structured;
    expect(generation.status).toBe("completed");
    const status = await app.request("GET", `/v1/generate/status?ids=${generation.generationId}`, {
      token: key,
    });
    expect(status.body.generations[generation.generationId].prompt).toBe("a stormy sea, ink wash");
    const earned = await app.request("GET", "/v1/balance", { token: creator.key });
    expect(earned.body.earnings).toBe(4);
    const missing = await client.callTool({
      name: "generate_image",
      arguments: { templateId: template.body.id, models: ["z-image-turbo"] },
    });
    expect(missing.isError).toBe(true);
    expect((missing.content as Array<{ text: string }>)[0]?.text).toMatch(
      /^missing_template_variable: /,
    );
    await expectMoneyInvariants(app.ctx);
  });

  it("lists models filtered by media type", async () => {
    const result = await client.callTool({
      name: "list_models",
      arguments: { mediaType: "video" },
    });
    const { models } = result.structuredContent as Structured;
    expect(models.length).toBeGreaterThan(0);
    expect(models.every((m: { type: string }) => m.type === "video")).toBe(true);
    const kling = models.find((m: { id: string }) => m.id === "kling-v2-6");
    expect(kling).toMatchObject({
      capabilities: { fps: { options: [24, 30], default: 24 } },
      limits: { maxPromptLength: 2_500 },
    });
  });

  it("lists text and audio models too, filtered by type", async () => {
    const all = await client.callTool({ name: "list_models", arguments: {} });
    const everything = (all.structuredContent as Structured).models as Array<{ type: string }>;
    expect(everything.length).toBeGreaterThanOrEqual(50);
    expect(new Set(everything.map((m) => m.type))).toEqual(
      new Set(["image", "video", "text", "audio"]),
    );
    const text = await client.callTool({ name: "list_models", arguments: { mediaType: "text" } });
    const textModels = (text.structuredContent as Structured).models;
    expect(textModels.every((m: { type: string }) => m.type === "text")).toBe(true);
    expect(textModels.find((m: { id: string }) => m.id === "gpt-5.5")).toMatchObject({
      pricing: { unit: "credits", per: "1M tokens", input: 350, output: 2_100 },
    });
    const audio = await client.callTool({ name: "list_models", arguments: { mediaType: "audio" } });
    const audioModels = (audio.structuredContent as Structured).models;
    expect(audioModels.every((m: { type: string }) => m.type === "audio")).toBe(true);
    expect(audioModels.find((m: { id: string }) => m.id === "stable-audio-2.5")).toMatchObject({
      kind: "music",
      capabilities: { durations: { min: 1, max: 190 } },
      pricing: { per: "clip", credits: 14 },
    });
  });

  it("passes routing preferences through to the API, which refuses an unknown channel", async () => {
    const routing = { only: ["sandbox-backup"] };
    const image = await client.callTool({
      name: "generate_image",
      arguments: { prompt: "a routed lighthouse", models: ["gpt-image-2"], routing },
    });
    expect(image.isError).toBeFalsy();
    expect((image.structuredContent as Structured).results[0].routing).toMatchObject({
      upstream: "sandbox-backup",
      preferences: routing,
    });
    const text = await client.callTool({
      name: "generate_text",
      arguments: { model: "claude-haiku-4.5", prompt: "hi", maxTokens: 20, routing },
    });
    expect((text.structuredContent as Structured).routing.upstream).toBe("sandbox-backup");
    const speech = await client.callTool({
      name: "generate_audio",
      arguments: { model: "gpt-4o-mini-tts", prompt: "hello", routing },
    });
    expect((speech.structuredContent as Structured).speech.upstream).toBe("sandbox-backup");
    const refused = await client.callTool({
      name: "generate_video",
      arguments: {
        prompt: "x",
        models: ["sora-2-preview"],
        duration: 4,
        routing: { only: ["nope"] },
      },
    });
    expect(refused.isError).toBe(true);
    expect((refused.content as Array<{ text: string }>)[0]?.text).toMatch(/^unknown_channel: /);
  });

  it("returns API refusals as tool errors with the API's code", async () => {
    const result = await client.callTool({
      name: "generate_image",
      arguments: { prompt: "x", models: ["no-such-model"] },
    });
    expect(result.isError).toBe(true);
    expect((result.content as Array<{ text: string }>)[0]?.text).toMatch(/^invalid_model: /);
    await expectMoneyInvariants(app.ctx);
  });
});

describe("the README's mcpServers entry", () => {
  it("works as written, with this repository's path and a key", async () => {
    const readme = readFileSync(path.join(repoRoot, "README.md"), "utf8");
    const block = /<!-- mcp:start -->\s*```json\n([\s\S]*?)```/.exec(readme)?.[1] as string;
    const entry = JSON.parse(block).mcpServers.polyforge;
    const { key } = await createFundedCaller(app.ctx, 100n);
    const client = new Client({ name: "readme", version: "1.0.0" });
    await client.connect(
      new StdioClientTransport({
        command: entry.command,
        args: entry.args.map((a: string) => (a === "/path/to/polyforge" ? repoRoot : a)),
        env: cliEnv({ ...entry.env, POLYFORGE_API_URL: app.url, POLYFORGE_API_KEY: key }) as Record<
          string,
          string
        >,
        cwd: tmpdir(),
        stderr: "pipe",
      }),
    );
    try {
      const balance = await client.callTool({ name: "get_balance", arguments: {} });
      expect(balance.structuredContent).toMatchObject({ creditBalance: 100, network: "test" });
    } finally {
      await client.close();
    }
  });
});

describe("a bad API key", () => {
  it("is a tool error over stdio", async () => {
    const client = await connect("stdio", "sk_test_not-a-key");
    try {
      const result = await client.callTool({ name: "get_balance", arguments: {} });
      expect(result.isError).toBe(true);
      expect((result.content as Array<{ text: string }>)[0]?.text).toMatch(/^invalid_api_key: /);
    } finally {
      await client.close();
    }
  });

  it("is refused at connection over Streamable HTTP", async () => {
    await expect(connect("Streamable HTTP", "sk_test_not-a-key")).rejects.toThrow(
      /401|invalid_api_key/,
    );
  });
});
