import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import express from "express";
import sharp from "sharp";
import { z } from "zod";
import { falAudio, isAudioModel, mountTextAudio, streamFaults } from "./text-audio.js";

/**
 * A local stand-in for three real upstream APIs, speaking their wire formats:
 * - OpenAI Images: POST /openai/v1/images/generations → { created, data: [{ b64_json }] }
 * - fal queue:     POST /fal/<model> → { request_id, status_url, response_url }, then GET both
 * - Replicate:     POST /replicate/v1/models/<owner>/<name>/predictions → prediction, GET to poll
 * - OpenAI chat and audio, Anthropic Messages: see text-audio.ts (and its stream faults)
 * Faults are injected per request, in order (`script`), or all the time (`always`); `byApi`
 * does the same for one API only, ahead of those, so one simulator can serve a failing channel
 * and its healthy backup.
 * Run on its own for demos: `npx tsx test/simulator/upstream.ts [port] [--fault api=fault[:count]]…`,
 * and change its faults while it runs with POST/GET/DELETE /__faults (see `faultRequest`).
 */
export const faults = [
  "ok",
  "error500",
  "rateLimit", // 429 with Retry-After: 1
  "hang", // never answers
  "slow", // answers after `latencyMs`
  "malformed", // 200 with a body that is not the format
  "contentPolicy", // the upstream's refusal of the prompt
  "garbage", // 200 in the right format, but the "image" is not one
  "unknownModel", // 404 for the model id: a misconfigured channel
  ...streamFaults, // chat streams only (text-audio.ts); other requests take them as "ok"
] as const;
export type Fault = (typeof faults)[number];

export const apis = ["openai", "fal", "replicate", "anthropic"] as const;
export type Api = (typeof apis)[number];

/** One API's own faults; `always` unset leaves that API to the shared ones once `script` is spent. */
export interface FaultPlan {
  script: Fault[];
  always?: Fault;
}

export interface Simulator {
  url: string;
  /** Requests that created work (not polls), in order. */
  calls: Array<{ api: string; model: string; prompt: string; input?: Record<string, unknown> }>;
  script: Fault[];
  always: Fault;
  /** Faults of one API only, taken before the shared ones while its entry lasts. */
  byApi: Partial<Record<Api, FaultPlan>>;
  latencyMs: number;
  /** While set, each request that creates work waits for it before its fault applies: an
   * upstream call a test holds in flight and then lets answer. */
  held?: Promise<unknown> | undefined;
  /**
   * How long a submitted fal request or Replicate prediction takes to finish, from its
   * submission, judged when it is polled (so a test may shorten it later); 50 ms by default.
   */
  jobMs: number;
  close(): Promise<void>;
}

/**
 * One change to a running simulator's faults (POST /__faults, or a --fault flag): `fault` for
 * the next `count` requests, or for every request when no count is given; for one `provider`'s
 * API (the CHANNELS provider name), or for all of them.
 */
export const faultRequest = z
  .object({
    provider: z.enum(apis).optional(),
    fault: z.enum(faults),
    count: z.number().int().min(1).max(10_000).optional(),
    latencyMs: z.number().int().min(0).max(600_000).optional(),
  })
  .strict();
export type FaultRequest = z.infer<typeof faultRequest>;

export function applyFaultRequest(sim: Simulator, change: FaultRequest): void {
  if (change.latencyMs !== undefined) sim.latencyMs = change.latencyMs;
  let plan: FaultPlan = sim;
  if (change.provider) {
    plan = sim.byApi[change.provider] ?? { script: [] };
    sim.byApi[change.provider] = plan;
  }
  if (change.count === undefined) plan.always = change.fault;
  else plan.script.push(...Array.from({ length: change.count }, () => change.fault));
}

/**
 * A test-network channel (CHANNELS entry) to this simulator's `api`, serving `models` (our id →
 * the upstream's), with a key the simulator accepts: what a test's configuration lists.
 */
export function simulatedChannel(
  sim: Simulator,
  api: Api,
  models: Record<string, string>,
  options: { id?: string; priority?: number } = {},
) {
  return {
    id: options.id ?? `${api}-sim`,
    provider: api,
    baseUrl: `${sim.url}/${api}`,
    apiKey: `sk-${api}-sim`,
    networks: ["test"],
    models,
    priority: options.priority ?? 0,
  };
}

export function clearFaults(sim: Simulator): void {
  sim.script = [];
  sim.always = "ok";
  sim.byApi = {};
}

function faultState(sim: Simulator) {
  return { script: sim.script, always: sim.always, byApi: sim.byApi, latencyMs: sim.latencyMs };
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
  const pending = new Map<string, { submittedAt: number; prompt: string }>();
  let nextId = 1;
  const sim: Simulator = {
    url: "",
    calls: [],
    script: [],
    always: "ok",
    byApi: {},
    latencyMs: 0,
    jobMs: 50,
    close: async () => {},
  };
  const done = (p: { submittedAt: number }) => Date.now() - p.submittedAt >= sim.jobMs;
  const fault = (api: Api): Fault => {
    const own = sim.byApi[api];
    return own?.script.shift() ?? own?.always ?? sim.script.shift() ?? sim.always;
  };

  // For demos by hand: change the faults of a running simulator.
  app.get("/__faults", (_req, res) => void res.json(faultState(sim)));
  app.post("/__faults", (req, res) => {
    const parsed = faultRequest.safeParse(req.body);
    if (!parsed.success) {
      return void res.status(400).json({
        error: {
          message: `expected {"provider"?: ${apis.join("|")}, "fault": ${faults.join("|")}, "count"?: n, "latencyMs"?: ms}: ${parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ")}`,
        },
      });
    }
    applyFaultRequest(sim, parsed.data);
    res.json(faultState(sim));
  });
  app.delete("/__faults", (_req, res) => {
    clearFaults(sim);
    res.json(faultState(sim));
  });

  /** Applies the next fault; returns true when the handler should go on normally. */
  async function applyFault(
    res: express.Response,
    f: Fault,
    format: "openai" | "fal" | "replicate",
  ): Promise<boolean> {
    await sim.held;
    switch (f) {
      case "ok":
      case "streamErrorFirst":
      case "streamError":
      case "streamHang":
      case "streamCut":
      case "malformedChunk":
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
    if (!(await applyFault(res, fault("openai"), "openai"))) return;
    if (!req.headers.authorization?.startsWith("Bearer "))
      return void res.status(401).json({ error: { message: "no key" } });
    res.json({
      created: Math.floor(Date.now() / 1000),
      data: [{ b64_json: (await png(req.body.prompt)).toString("base64") }],
    });
  });

  mountTextAudio(app, {
    record: (call) => sim.calls.push(call),
    applyFault: async (res, api) => {
      const f = fault(api);
      if ((streamFaults as readonly string[]).includes(f)) {
        await sim.held;
        return f as (typeof streamFaults)[number];
      }
      return applyFault(res, f, "openai");
    },
  });

  app.post(/^\/fal\/(.+)$/, async (req, res) => {
    const model = String(req.params[0]);
    sim.calls.push({ api: "fal", model, prompt: req.body?.prompt, input: req.body });
    if (!(await applyFault(res, fault("fal"), "fal"))) return;
    const id = `req-${nextId++}`;
    pending.set(id, { submittedAt: Date.now(), prompt: req.body.prompt });
    outputs.set(id, isAudioModel(model) ? falAudio(model, req.body) : await outputOf(req.body));
    res.json({
      request_id: id,
      status_url: `${sim.url}/fal/requests/${id}/status`,
      response_url: `${sim.url}/fal/requests/${id}`,
    });
  });
  app.get("/fal/requests/:id/status", (req, res) => {
    const p = pending.get(req.params.id);
    if (!p) return void res.status(404).json({ detail: "not found" });
    res.json({ status: done(p) ? "COMPLETED" : "IN_PROGRESS" });
  });
  app.get("/fal/requests/:id", (req, res) => {
    const url = `${sim.url}/files/${req.params.id}.png`;
    const audio = { url: `${sim.url}/files/${req.params.id}.wav`, content_type: "audio/wav" };
    res.json({ images: [{ url, content_type: "image/png" }], video: { url }, audio });
  });

  app.post(/^\/replicate\/v1\/models\/(.+)\/predictions$/, async (req, res) => {
    const model = String(req.params[0]);
    sim.calls.push({
      api: "replicate",
      model,
      prompt: req.body?.input?.prompt,
      input: req.body?.input,
    });
    if (!(await applyFault(res, fault("replicate"), "replicate"))) return;
    const id = `p${nextId++}`;
    pending.set(id, { submittedAt: Date.now(), prompt: req.body.input.prompt });
    outputs.set(id, await outputOf(req.body.input));
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
      status: done(p) ? "succeeded" : "processing",
      output: done(p) ? [`${sim.url}/files/${req.params.id}.png`] : null,
      urls: { get: `${sim.url}/replicate/v1/predictions/${req.params.id}` },
    });
  });

  app.get("/files/:name", (req, res) => {
    const bytes = outputs.get(req.params.name.replace(/\.(png|wav)$/, ""));
    if (!bytes) return void res.status(404).end();
    if (bytes.toString("latin1", 0, 4) === "RIFF") return void res.type("audio/wav").send(bytes);
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

/**
 * The standalone command's arguments: `[port] [--fault [api=]fault[:count]]… [--latency-ms ms]`,
 * e.g. `--fault openai=error500` (every OpenAI-format request fails) or `--fault rateLimit:2`.
 */
export function parseSimulatorArgs(argv: string[]): {
  port: number;
  faults: FaultRequest[];
  latencyMs?: number;
} {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      fault: { type: "string", multiple: true, default: [] },
      "latency-ms": { type: "string" },
    },
  });
  const port = Number(positionals[0] ?? 4010);
  if (!(Number.isInteger(port) && port >= 0 && port <= 65_535)) {
    throw new Error(`the port must be a number from 0 to 65535, not ${positionals[0]}`);
  }
  const changes = values.fault.map((flag) => {
    const match = /^(?:(\w+)=)?(\w+)(?::(\d+))?$/.exec(flag);
    const parsed = faultRequest.safeParse({
      ...(match?.[1] && { provider: match[1] }),
      fault: match?.[2],
      ...(match?.[3] && { count: Number(match[3]) }),
    });
    if (!match || !parsed.success) {
      throw new Error(
        `--fault ${flag}: expected [${apis.join("|")}=]${faults.join("|")}[:count], e.g. openai=error500`,
      );
    }
    return parsed.data;
  });
  const latency = values["latency-ms"];
  if (latency === undefined) return { port, faults: changes };
  const latencyMs = Number(latency);
  if (!(Number.isInteger(latencyMs) && latencyMs >= 0)) {
    throw new Error(`--latency-ms ${latency}: expected milliseconds (how long "slow" waits)`);
  }
  return { port, faults: changes, latencyMs };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  let args: ReturnType<typeof parseSimulatorArgs>;
  try {
    args = parseSimulatorArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`upstream simulator: ${(err as Error).message}`);
    process.exit(2);
  }
  const sim = await startSimulator(args.port);
  if (args.latencyMs !== undefined) sim.latencyMs = args.latencyMs;
  for (const change of args.faults) applyFaultRequest(sim, change);
  console.log(
    `upstream simulator on ${sim.url} (openai: ${sim.url}/openai, fal: ${sim.url}/fal, replicate: ${sim.url}/replicate)`,
  );
  console.log(
    `faults: ${JSON.stringify(faultState(sim))} (change them with POST/DELETE ${sim.url}/__faults)`,
  );
}
