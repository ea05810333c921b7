import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import sharp from "sharp";

/**
 * A local stand-in for three real upstream APIs, speaking their wire formats:
 * - OpenAI Images: POST /openai/v1/images/generations → { created, data: [{ b64_json }] }
 * - fal queue:     POST /fal/<model> → { request_id, status_url, response_url }, then GET both
 * - Replicate:     POST /replicate/v1/models/<owner>/<name>/predictions → prediction, GET to poll
 * Faults are injected per request, in order (`script`), or all the time (`always`).
 * Run on its own for demos: `npx tsx test/simulator/upstream.ts [port]`.
 */
export type Fault =
  | "ok"
  | "error500"
  | "rateLimit" // 429 with Retry-After: 1
  | "hang" // never answers
  | "slow" // answers after `latencyMs`
  | "malformed" // 200 with a body that is not the format
  | "contentPolicy" // the upstream's refusal of the prompt
  | "garbage" // 200 in the right format, but the "image" is not one
  | "unknownModel"; // 404 for the model id: a misconfigured channel

export interface Simulator {
  url: string;
  /** Requests that created work (not polls), in order. */
  calls: Array<{ api: string; model: string; prompt: string; input?: Record<string, unknown> }>;
  script: Fault[];
  always: Fault;
  latencyMs: number;
  close(): Promise<void>;
}

async function png(prompt: string): Promise<Buffer> {
  const hue = [...prompt].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 360, 7);
  return sharp({
    create: { width: 64, height: 64, channels: 3, background: `hsl(${hue},60%,50%)` },
  })
    .png()
    .toBuffer();
}

/** A short animated WebP: what a video request (one with a duration) gets back. */
async function webp(prompt: string): Promise<Buffer> {
  const frame = await png(prompt);
  const { data, info } = await sharp(frame)
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const frames = 2;
  const strip = Buffer.concat([data, Buffer.from(data).fill(255, 0, info.width * 4)]);
  return sharp(strip, {
    raw: { width: info.width, height: info.height * frames, channels: 4, pageHeight: info.height },
  })
    .webp({ loop: 0, delay: [500, 500] })
    .toBuffer();
}

const outputOf = (input: { prompt?: string; duration?: unknown } | undefined) =>
  input?.duration === undefined ? png(String(input?.prompt)) : webp(String(input?.prompt));

export async function startSimulator(port = 0): Promise<Simulator> {
  const app = express();
  app.use(express.json({ limit: "1mb" }));
  const outputs = new Map<string, Buffer>();
  const pending = new Map<string, { done: boolean; prompt: string }>();
  let nextId = 1;
  const sim: Simulator = {
    url: "",
    calls: [],
    script: [],
    always: "ok",
    latencyMs: 0,
    close: async () => {},
  };
  const fault = () => sim.script.shift() ?? sim.always;

  /** Applies the next fault; returns true when the handler should go on normally. */
  async function applyFault(
    res: express.Response,
    f: Fault,
    format: "openai" | "fal" | "replicate",
  ): Promise<boolean> {
    switch (f) {
      case "ok":
        return true;
      case "slow":
        await new Promise((r) => setTimeout(r, sim.latencyMs));
        return true;
      case "hang":
        return false; // the response is never sent
      case "error500":
        res.status(500).json({ error: { message: "upstream exploded", type: "server_error" } });
        return false;
      case "rateLimit":
        res
          .status(429)
          .set("retry-after", "1")
          .json({ error: { message: "Rate limit reached", type: "requests" } });
        return false;
      case "malformed":
        res
          .status(200)
          .type("application/json")
          .send(format === "openai" ? '{"data": "nope"' : '{"unexpected": true}');
        return false;
      case "garbage":
        res.json(
          format === "openai"
            ? {
                created: 0,
                data: [{ b64_json: Buffer.from("<html>oops</html>").toString("base64") }],
              }
            : { unexpected: true },
        );
        return false;
      case "unknownModel":
        res.status(404).json({
          error: {
            message: "The model does not exist",
            type: "invalid_request_error",
            code: "model_not_found",
          },
        });
        return false;
      case "contentPolicy":
        res.status(400).json({
          error: {
            code: "content_policy_violation",
            message: "Your request was rejected by the safety system.",
            type: "invalid_request_error",
          },
        });
        return false;
    }
  }

  app.post("/openai/v1/images/generations", async (req, res) => {
    sim.calls.push({ api: "openai", model: req.body?.model, prompt: req.body?.prompt });
    if (!(await applyFault(res, fault(), "openai"))) return;
    if (!req.headers.authorization?.startsWith("Bearer "))
      return void res.status(401).json({ error: { message: "no key" } });
    res.json({
      created: Math.floor(Date.now() / 1000),
      data: [{ b64_json: (await png(req.body.prompt)).toString("base64") }],
    });
  });

  app.post(/^\/fal\/(.+)$/, async (req, res) => {
    const model = String(req.params[0]);
    sim.calls.push({ api: "fal", model, prompt: req.body?.prompt, input: req.body });
    if (!(await applyFault(res, fault(), "fal"))) return;
    const id = `req-${nextId++}`;
    pending.set(id, { done: false, prompt: req.body.prompt });
    outputs.set(id, await outputOf(req.body));
    setTimeout(() => {
      const p = pending.get(id);
      if (p) p.done = true;
    }, 50);
    res.json({
      request_id: id,
      status_url: `${sim.url}/fal/requests/${id}/status`,
      response_url: `${sim.url}/fal/requests/${id}`,
    });
  });
  app.get("/fal/requests/:id/status", (req, res) => {
    const p = pending.get(req.params.id);
    if (!p) return void res.status(404).json({ detail: "not found" });
    res.json({ status: p.done ? "COMPLETED" : "IN_PROGRESS" });
  });
  app.get("/fal/requests/:id", (req, res) => {
    const url = `${sim.url}/files/${req.params.id}.png`;
    res.json({ images: [{ url, content_type: "image/png" }], video: { url } });
  });

  app.post(/^\/replicate\/v1\/models\/(.+)\/predictions$/, async (req, res) => {
    const model = String(req.params[0]);
    sim.calls.push({
      api: "replicate",
      model,
      prompt: req.body?.input?.prompt,
      input: req.body?.input,
    });
    if (!(await applyFault(res, fault(), "replicate"))) return;
    const id = `p${nextId++}`;
    pending.set(id, { done: false, prompt: req.body.input.prompt });
    outputs.set(id, await outputOf(req.body.input));
    setTimeout(() => {
      const p = pending.get(id);
      if (p) p.done = true;
    }, 50);
    res.status(201).json({
      id,
      status: "starting",
      output: null,
      urls: { get: `${sim.url}/replicate/v1/predictions/${id}` },
    });
  });
  app.get("/replicate/v1/predictions/:id", (req, res) => {
    const p = pending.get(req.params.id);
    if (!p) return void res.status(404).json({ detail: "not found" });
    res.json({
      id: req.params.id,
      status: p.done ? "succeeded" : "processing",
      output: p.done ? [`${sim.url}/files/${req.params.id}.png`] : null,
      urls: { get: `${sim.url}/replicate/v1/predictions/${req.params.id}` },
    });
  });

  app.get("/files/:name", (req, res) => {
    const bytes = outputs.get(req.params.name.replace(/\.png$/, ""));
    if (!bytes) return void res.status(404).end();
    // The bytes say what they are; the downloader checks them, not this header.
    res.type("image/png").send(bytes);
  });

  const server: Server = await new Promise((resolve) => {
    const s = app.listen(port, "127.0.0.1", () => resolve(s));
  });
  sim.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  sim.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return sim;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sim = await startSimulator(Number(process.argv[2] ?? 4010));
  console.log(
    `upstream simulator on ${sim.url} (openai: ${sim.url}/openai, fal: ${sim.url}/fal, replicate: ${sim.url}/replicate)`,
  );
}
