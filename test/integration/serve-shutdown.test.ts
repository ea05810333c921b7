import http from "node:http";
import { runOnce } from "graphile-worker";
import { afterAll, beforeAll, expect, it } from "vitest";
import { graphileLogger } from "../../src/jobs/logger.js";
import { taskList } from "../../src/jobs/tasks.js";
import { createFundedCaller, startTestApp, type TestApp } from "../helpers/app.js";
import { startCli } from "../helpers/cli.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { freePort } from "../helpers/ports.js";
import { type Simulator, startSimulator } from "../simulator/upstream.js";

/**
 * A deploy: SIGTERM to a real `polyforge serve` while OpenAI-images requests wait for their
 * images and event streams are open. The upstream holds every call and no worker runs, so
 * every request is still waiting when the signal lands. Each waiting request must get its 202 with the generation id, each
 * stream a last `reconnect` event, each answer `Connection: close`, no connection a reset;
 * and what is charged afterwards is exactly the generations the callers were told about.
 */
let app: TestApp;
let upstream: Simulator;

beforeAll(async () => {
  app = await startTestApp({ env: { LOG_LEVEL: "error" } });
  upstream = await startSimulator();
});
afterAll(async () => {
  await app.close();
  await upstream.close();
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on a keep-alive agent, so a connection that is reset (not closed) shows. */
function send(
  agent: http.Agent,
  url: string,
  options: { method: string; key: string; json?: unknown },
  onResponse?: (res: http.IncomingMessage) => void,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = options.json === undefined ? undefined : JSON.stringify(options.json);
    const req = http.request(
      url,
      {
        method: options.method,
        agent,
        headers: {
          authorization: `Bearer ${options.key}`,
          ...(body ? { "content-type": "application/json" } : {}),
        },
      },
      (res) => {
        onResponse?.(res);
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (text += d));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

it("answers waiting image requests 202 with their ids and ends streams with a reconnect event on SIGTERM, charging only what callers were told", async () => {
  const caller = await createFundedCaller(app.ctx, 1_000n);
  let letGo = () => {};
  upstream.held = new Promise<void>((resolve) => {
    letGo = resolve;
  });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const serve = startCli(["serve"], {
    DATABASE_URL: app.database.url,
    PORT: String(port),
    HOST: "127.0.0.1",
    PUBLIC_URL: url,
    STORAGE_DIR: app.ctx.config.storageDir,
    RATE_LIMITS: "off",
    LOG_LEVEL: "info",
    // Far past the shutdown's own limit: without the shutdown signal these requests would
    // still be waiting when the forced close cuts them.
    IMAGES_WAIT_MS: "300000",
    SHUTDOWN_TIMEOUT_MS: "10000",
    // The images run in the serve process itself, on an upstream that holds them.
    CHANNELS: JSON.stringify([
      {
        id: "held",
        provider: "openai",
        baseUrl: `${upstream.url}/openai`,
        apiKey: "k",
        networks: ["test"],
        models: { "gpt-image-2": "gpt-image-1" },
      },
    ]),
  });
  try {
    await serve.waitFor("API listening");
    const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });

    // Two generations to stream.
    const streamed: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await send(agent, `${url}/v1/generate`, {
        method: "POST",
        key: caller.key,
        json: { prompt: `stream ${i}`, models: ["gpt-image-2"] },
      });
      expect(res.status).toBe(202);
      streamed.push(JSON.parse(res.body).generationId);
    }
    let streamsOpen = 0;
    const streams = streamed.map((id) =>
      send(agent, `${url}/v1/generate/${id}/events`, { method: "GET", key: caller.key }, (res) => {
        res.once("data", () => streamsOpen++);
      }),
    );

    const images = Array.from({ length: 8 }, (_, i) =>
      send(agent, `${url}/v1/images/generations`, {
        method: "POST",
        key: caller.key,
        json: { model: "gpt-image-2", prompt: `wait ${i}`, size: "1024x1024" },
      }),
    );
    const generationCount = async () =>
      (
        await app.ctx.pool.query(
          "select count(*)::int as n from generations where account_id = $1",
          [caller.account.id],
        )
      ).rows[0].n as number;
    // Every image request has submitted and is waiting, every stream has its first bytes.
    await until(
      "the requests to wait",
      async () => (await generationCount()) === 10 && streamsOpen === 2,
    );

    serve.child.kill("SIGTERM");
    const answers = await Promise.all(images);
    const streamAnswers = await Promise.all(streams);
    expect(await serve.exited).toBe(0);
    agent.destroy();

    const told = new Set<string>(streamed);
    for (const answer of answers) {
      expect(answer.status).toBe(202);
      expect(answer.headers.connection).toBe("close");
      const body = JSON.parse(answer.body);
      expect(body).toMatchObject({ status: "processing", credits: 3 });
      expect(body.id).toMatch(/^gen_/);
      expect(body.ids).toEqual([body.id]);
      told.add(body.id);
    }
    for (const [i, stream] of streamAnswers.entries()) {
      expect(stream.status).toBe(200);
      const events = stream.body.trim().split("\n\n");
      const last = events.at(-1) ?? "";
      expect(last).toMatch(/^retry: \d+\nid: \d+\nevent: reconnect\ndata: /);
      const data = JSON.parse(last.slice(last.indexOf("data: ") + 6));
      expect(data.generationId).toBe(streamed[i]);
    }
    expect(told.size).toBe(10);

    // The work goes on after the deploy (what serve still ran it handed to the workers as it
    // stopped); what is charged is exactly what callers were told of.
    letGo();
    await runOnce({
      pgPool: app.ctx.pool,
      taskList: taskList(app.ctx),
      logger: graphileLogger(app.ctx.logger),
    });
    const { rows } = await app.ctx.pool.query(
      `select g.id, r.status, r.charged::int as charged
         from generations g join generation_results r on r.generation_id = g.id
        where g.account_id = $1`,
      [caller.account.id],
    );
    expect(new Set(rows.map((r) => r.id))).toEqual(told);
    for (const row of rows) expect(row).toMatchObject({ status: "completed", charged: 30_000 });
    const balance = await app.request("GET", "/v1/balance", { token: caller.key });
    expect(balance.body).toMatchObject({ creditBalance: 1_000 - 30, heldCredits: 0 });
    await expectMoneyInvariants(app.ctx);
  } finally {
    letGo();
    upstream.held = undefined;
    if (serve.child.exitCode === null) serve.child.kill("SIGKILL");
    await serve.exited;
  }
}, 60_000);
