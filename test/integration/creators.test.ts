import { sql } from "drizzle-orm";
import type { Runner } from "graphile-worker";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { resultIdOf } from "../../src/domains/generations/submit.js";
import { payRoyalties } from "../../src/domains/passes/royalties.js";
import { storeImage } from "../../src/domains/uploads/service.js";
import { startWorker } from "../../src/jobs/worker.js";
import {
  createAccountWithKey,
  createFundedCaller,
  startTestApp,
  type TestApp,
  waitForGeneration,
} from "../helpers/app.js";
import { solidPng } from "../helpers/images.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { type Simulator, startSimulator } from "../simulator/upstream.js";

/**
 * Style passes, prompt templates and royalties, through the real HTTP app, worker and
 * PostgreSQL. gpt-image-2 is served by an OpenAI-format simulator (so a test can make it refuse
 * a prompt), qwen-image-2.0 by a fal-format one (which takes a negative prompt), the rest by
 * the sandbox. The platform keeps the default 20% of each pass fee.
 */

let app: TestApp;
let worker: Runner;
let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator();
  app = await startTestApp({
    env: {
      CHANNELS: JSON.stringify([
        {
          id: "openai",
          provider: "openai",
          baseUrl: `${sim.url}/openai`,
          apiKey: "sk-sim",
          networks: ["test"],
          models: { "gpt-image-2": "gpt-image-1" },
          priority: 0,
        },
        {
          id: "fal",
          provider: "fal",
          baseUrl: `${sim.url}/fal`,
          apiKey: "fal-sim",
          networks: ["test"],
          models: { "qwen-image-2.0": "fal-ai/qwen-image" },
          priority: 0,
        },
        {
          id: "sandbox",
          provider: "sandbox",
          networks: ["test", "live"],
          models: "*",
          priority: 1,
        },
      ]),
      SSRF_ALLOW_HOSTS: new URL(sim.url).host,
    },
  });
  worker = await startWorker(app.ctx);
});

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await sim?.close();
});

afterEach(async () => {
  sim.always = "ok";
  await expectMoneyInvariants(app.ctx);
});

type Caller = Awaited<ReturnType<typeof createFundedCaller>>;

const newCaller = (credits = 1_000n) =>
  credits > 0n ? createFundedCaller(app.ctx, credits) : createAccountWithKey(app.ctx);
const scope = (caller: Caller) => ({ accountId: caller.account.id, network: "test" as const });

async function publish(creator: Caller, fields: Record<string, unknown> = {}) {
  const res = await app.call("createPass", {
    token: creator.key,
    json: { name: "Ink wash", stylePrompt: "ink wash painting", fee: 5, ...fields },
  });
  expect(res.status).toBe(201);
  return res.body as { id: string; fee: number };
}

async function generate(caller: Caller, body: Record<string, unknown>) {
  const res = await app.call("generate", {
    token: caller.key,
    json: { prompt: "a heron", models: ["z-image-turbo"], ...body },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return (await waitForGeneration(app, caller.key, res.body.generationId)) as {
    generationId: string;
    status: string;
    prompt: string;
    cost: { quoted: number; charged: number; refunded: number };
    quote: {
      models: Array<{ model: string; credits: number }>;
      passFees: Array<{ passId: string; fee: number; uses: number; credits: number }>;
      total: number;
    };
    results: Array<{ model: string; status: string; cost: number }>;
  };
}

const balanceOf = async (caller: Caller) =>
  (await app.call("getBalance", { token: caller.key })).body as {
    creditBalance: number;
    earnings: number;
  };

const earningsOf = async (caller: Caller) =>
  (await app.call("getEarnings", { token: caller.key })).body;

async function modelPrice(caller: Caller, model: string): Promise<number> {
  const res = await app.call("quoteGeneration", {
    token: caller.key,
    json: { prompt: "x", models: [model] },
  });
  expect(res.status).toBe(200);
  return res.body.quote.total;
}

async function royaltyTransfers(passId: string) {
  const { rows } = await app.ctx.db.execute<{ id: string; amount: string; credit: string }>(
    sql`select id, amount::text, credit_account_id as credit from ledger_transfers where kind = 'royalty' and reference = ${passId} order by id`,
  );
  return rows;
}

describe("style passes", () => {
  it("are published, read, changed by their creator only, and archived", async () => {
    const creator = await newCaller();
    const other = await newCaller();
    const pass = await publish(creator, {
      description: "Loose brushwork",
      negativePrompt: "photograph",
      defaults: { aspectRatio: "3:4" },
      tags: ["Ink", "painting"],
    });
    expect(pass).toMatchObject({
      creatorId: creator.account.id,
      network: "test",
      tags: ["ink", "painting"],
      mediaType: "image",
      visibility: "public",
      status: "active",
      uses: 0,
    });
    const read = await app.call("getPass", { params: { id: pass.id }, token: other.key });
    expect(read.body).toEqual(expect.objectContaining({ id: pass.id, fee: 5 }));

    const notYours = await app.call("updatePass", {
      params: { id: pass.id },
      token: other.key,
      json: { fee: 0 },
    });
    expect(notYours.status).toBe(403);
    expect(notYours.body.error.code).toBe("not_creator");
    const changed = await app.call("updatePass", {
      params: { id: pass.id },
      token: creator.key,
      json: { fee: 7, negativePrompt: null, tags: ["ink"] },
    });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ fee: 7, negativePrompt: null, tags: ["ink"] });
    const empty = await app.call("updatePass", {
      params: { id: pass.id },
      token: creator.key,
      json: {},
    });
    expect(empty.status).toBe(400);

    const archived = await app.call("archivePass", { params: { id: pass.id }, token: creator.key });
    expect(archived.body).toMatchObject({ status: "archived" });
    expect(archived.body.archivedAt).not.toBeNull();
    const again = await app.call("archivePass", { params: { id: pass.id }, token: creator.key });
    expect(again.body.archivedAt).toBe(archived.body.archivedAt);
    const use = await app.call("generate", {
      token: other.key,
      json: { prompt: "a heron", models: ["z-image-turbo"], stylePassIds: [pass.id] },
    });
    expect(use.status).toBe(400);
    expect(use.body.error).toMatchObject({ code: "pass_archived", field: "stylePassIds" });
    const frozen = await app.call("updatePass", {
      params: { id: pass.id },
      token: creator.key,
      json: { fee: 1 },
    });
    expect(frozen.body.error.code).toBe("pass_archived");
    expect((await balanceOf(other)).creditBalance).toBe(1_000);
  });

  it("refuse bad input with a code naming the field", async () => {
    const creator = await newCaller();
    const other = await newCaller();
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ fee: -1 }, "invalid_request", "fee"],
      [{ fee: 1.00005 }, "invalid_request", "fee"],
      [{ fee: 1001 }, "invalid_request", "fee"],
      [{ stylePrompt: "" }, "invalid_request", "stylePrompt"],
      [{ tags: ["no spaces"] }, "invalid_request", "tags.0"],
      [{ defaults: { resolution: "1080p" } }, "invalid_request", "defaults.resolution"],
      [{ previewImageIds: ["img_01arz3ndektsv4rrffq69g5fav"] }, "invalid_reference_image", ""],
    ];
    for (const [fields, code, path] of cases) {
      const res = await app.call("createPass", {
        token: creator.key,
        json: { name: "x", stylePrompt: "y", fee: 1, ...fields },
      });
      expect(res.status, JSON.stringify(fields)).toBe(400);
      expect(res.body.error.code).toBe(code);
      if (path) expect(JSON.stringify(res.body.error.issues)).toContain(path);
    }
    // Someone else's upload is not a preview of yours; your own is.
    const png = await solidPng(8, 8);
    const theirs = await storeImage(app.ctx, scope(other), png);
    const refused = await app.call("createPass", {
      token: creator.key,
      json: { name: "x", stylePrompt: "y", fee: 1, previewImageIds: [theirs.id] },
    });
    expect(refused.body.error.code).toBe("invalid_reference_image");
    const mine = await storeImage(app.ctx, scope(creator), png);
    const withPreview = await publish(creator, { previewImageIds: [mine.id] });
    expect(withPreview).toMatchObject({ previewImageIds: [mine.id] });
    const preview = await fetch(
      `${app.url}${new URL((withPreview as unknown as { previewImageUrls: string[] }).previewImageUrls[0] as string).pathname}${new URL((withPreview as unknown as { previewImageUrls: string[] }).previewImageUrls[0] as string).search}`,
    );
    expect(preview.status).toBe(200);
    const unknown = await app.call("generate", {
      token: other.key,
      json: {
        prompt: "a heron",
        models: ["z-image-turbo"],
        stylePassIds: ["pass_01arz3ndektsv4rrffq69g5fav"],
      },
    });
    expect(unknown.body.error).toMatchObject({ code: "pass_not_found", field: "stylePassIds" });
    const video = await publish(creator, { mediaType: "video" });
    const mismatch = await app.call("generate", {
      token: other.key,
      json: { prompt: "a heron", models: ["z-image-turbo"], stylePassIds: [video.id] },
    });
    expect(mismatch.body.error.code).toBe("pass_media_mismatch");
  });

  it("belong to one network: a live key cannot see or apply a test pass", async () => {
    const creator = await newCaller();
    const pass = await publish(creator);
    const live = await createFundedCaller(app.ctx, 100n, "live");
    const read = await app.call("getPass", { params: { id: pass.id }, token: live.key });
    expect(read.status).toBe(404);
    // An id that cannot name a pass or a template is their 404 too, not a 400 about its form.
    for (const path of ["/v1/passes/banana", "/v1/templates/banana"]) {
      const malformed = await app.request("GET", path, { token: creator.key });
      expect(malformed.status, path).toBe(404);
      expect(malformed.body.error.code).toBe("not_found");
    }
    const use = await app.call("quoteGeneration", {
      token: live.key,
      json: { prompt: "a heron", models: ["z-image-turbo"], stylePassIds: [pass.id] },
    });
    expect(use.body.error.code).toBe("pass_not_found");
    const listed = await app.call("listPasses", { query: { limit: 100 }, token: live.key });
    expect(listed.body.data.map((p: { id: string }) => p.id)).not.toContain(pass.id);
  });

  it("are listed with filters, four sorts and cursors; unlisted and archived ones only to their creator", async () => {
    const creator = await newCaller();
    const viewer = await newCaller();
    const tag = `t${Date.now().toString(36)}`;
    const fees = [4, 1, 9, 6, 2];
    const passes = [];
    for (const fee of fees) passes.push(await publish(creator, { fee, tags: [tag] }));
    const hidden = await publish(creator, { fee: 3, tags: [tag], visibility: "unlisted" });
    const gone = await publish(creator, { fee: 8, tags: [tag] });
    await app.call("archivePass", { params: { id: gone.id }, token: creator.key });
    await publish(creator, { fee: 5, tags: [tag], mediaType: "video" });

    // Two uses of the fee-1 pass and one of the fee-9 one, for most_used.
    const user = await newCaller();
    await generate(user, { stylePassIds: [passes[1]?.id] });
    await generate(user, { stylePassIds: [passes[1]?.id] });
    await generate(user, { stylePassIds: [passes[2]?.id] });

    const all = async (query: string, token = viewer.key) => {
      const seen: Array<{ id: string; fee: number; uses: number }> = [];
      let cursor: string | null = null;
      do {
        const page: { body: { data: typeof seen; nextCursor: string | null } } = await app.request(
          "GET",
          `/v1/passes?tag=${tag}&mediaType=image&limit=2&${query}${cursor ? `&cursor=${cursor}` : ""}`,
          { token },
        );
        seen.push(...page.body.data);
        cursor = page.body.nextCursor;
      } while (cursor);
      return seen;
    };
    const byFee = (await all("sort=fee_asc")).map((p) => p.fee);
    expect(byFee).toEqual([1, 2, 4, 6, 9]);
    expect((await all("sort=fee_desc")).map((p) => p.fee)).toEqual([9, 6, 4, 2, 1]);
    expect((await all("sort=newest")).map((p) => p.id)).toEqual(passes.map((p) => p.id).reverse());
    const popular = await all("sort=most_used");
    expect(popular.slice(0, 2).map((p) => [p.fee, p.uses])).toEqual([
      [1, 2],
      [9, 1],
    ]);
    expect(popular).toHaveLength(5);
    // Their creator also sees the unlisted one, and the archived one when asking for it.
    expect((await all("sort=fee_asc", creator.key)).map((p) => p.fee)).toEqual([1, 2, 3, 4, 6, 9]);
    const withArchived = await all("sort=fee_asc&creator=me&includeArchived=true", creator.key);
    expect(withArchived.map((p) => p.fee)).toEqual([1, 2, 3, 4, 6, 8, 9]);
    expect((await all("includeArchived=true")).map((p) => p.fee)).not.toContain(8);
    // The unlisted pass still opens and applies by its id.
    expect(
      (await app.call("getPass", { params: { id: hidden.id }, token: viewer.key })).status,
    ).toBe(200);
    const other = await app.call("listPasses", {
      query: { creator: viewer.account.id, tag },
      token: viewer.key,
    });
    expect(other.body.data).toEqual([]);
    const mixed = await app.call("listPasses", {
      query: {
        sort: "fee_desc",
        cursor: Buffer.from(JSON.stringify(["fee_asc", "1", passes[0]?.id])).toString("base64url"),
      },
      token: viewer.key,
    });
    expect(mixed.status).toBe(400);
  });
});

describe("prompt templates", () => {
  async function saveTemplate(caller: Caller, body: Record<string, unknown>) {
    return app.request("POST", "/v1/templates", { token: caller.key, json: body });
  }

  it("must declare exactly the variables their text uses, with defaults inside their limits", async () => {
    const creator = await newCaller();
    const undeclared = await saveTemplate(creator, { name: "t", text: "a {{subject}}" });
    expect(undeclared.body.error).toMatchObject({ code: "invalid_template", field: "variables" });
    const unused = await saveTemplate(creator, {
      name: "t",
      text: "a cat",
      variables: { mood: {} },
    });
    expect(unused.body.error).toMatchObject({ code: "invalid_template", field: "variables.mood" });
    const badDefault = await saveTemplate(creator, {
      name: "t",
      text: "a {{mood}} sea",
      variables: { mood: { default: "sunny", allowed: ["calm", "stormy"] } },
    });
    expect(badDefault.body.error).toMatchObject({
      code: "invalid_template",
      field: "variables.mood.default",
    });
    const badName = await saveTemplate(creator, {
      name: "t",
      text: "a {{1x}}",
      variables: { "1x": {} },
    });
    expect(badName.status).toBe(400);

    const saved = await saveTemplate(creator, {
      name: "Seascape",
      text: "a {{ mood }} sea under {{sky}}",
      variables: {
        mood: { allowed: ["calm", "stormy"] },
        sky: { default: "a red sky", maxLength: 20 },
      },
      visibility: "unlisted",
    });
    expect(saved.status).toBe(201);
    expect(saved.body.variables.mood.maxLength).toBe(200);
    const other = await newCaller();
    const listed = await app.call("listTemplates", { query: { limit: 100 }, token: other.key });
    expect(listed.body.data.map((t: { id: string }) => t.id)).not.toContain(saved.body.id);
    const mine = await app.call("listTemplates", { query: { creator: "me" }, token: creator.key });
    expect(mine.body.data.map((t: { id: string }) => t.id)).toEqual([saved.body.id]);
  });

  it("refuse a missing, unknown or out-of-limits variable with a 400 naming it, and nothing is held", async () => {
    const creator = await newCaller();
    const user = await newCaller(100n);
    const template = await saveTemplate(creator, {
      name: "Seascape",
      text: "a {{mood}} sea under {{sky}}",
      variables: {
        mood: { allowed: ["calm", "stormy"] },
        sky: { default: "a red sky", maxLength: 20 },
      },
    });
    const templateId = template.body.id as string;
    const attempt = (templateVariables?: Record<string, string>, extra = {}) =>
      app.call("generate", {
        token: user.key,
        json: { templateId, templateVariables, models: ["z-image-turbo"], ...extra },
      });
    const missing = await attempt({});
    expect(missing.status).toBe(400);
    expect(missing.body.error).toMatchObject({
      code: "missing_template_variable",
      variable: "mood",
      field: "templateVariables.mood",
    });
    expect(missing.body.error.message).toContain("mood");
    const unknown = await attempt({ mood: "calm", weather: "fog" });
    expect(unknown.body.error).toMatchObject({
      code: "unknown_template_variable",
      variable: "weather",
      field: "templateVariables.weather",
    });
    const notAllowed = await attempt({ mood: "sunny" });
    expect(notAllowed.body.error).toMatchObject({
      code: "invalid_template_variable",
      variable: "mood",
    });
    const tooLong = await attempt({ mood: "calm", sky: "x".repeat(21) });
    expect(tooLong.body.error).toMatchObject({
      code: "invalid_template_variable",
      variable: "sky",
    });
    const noTemplate = await app.call("generate", {
      token: user.key,
      json: { prompt: "x", templateVariables: { a: "b" }, models: ["z-image-turbo"] },
    });
    expect(noTemplate.status).toBe(400);
    const unknownTemplate = await app.call("generate", {
      token: user.key,
      json: { templateId: "tpl_01arz3ndektsv4rrffq69g5fav", models: ["z-image-turbo"] },
    });
    expect(unknownTemplate.body.error).toMatchObject({
      code: "template_not_found",
      field: "templateId",
    });
    // The batch names the item too.
    const batch = await app.call("generateBatch", {
      token: user.key,
      json: {
        requests: [
          { templateId, templateVariables: { mood: "calm" }, models: ["z-image-turbo"] },
          { templateId, templateVariables: {}, models: ["z-image-turbo"] },
        ],
      },
    });
    expect(batch.body.error).toMatchObject({
      code: "missing_template_variable",
      field: "requests.1.templateVariables.mood",
    });
    expect(await balanceOf(user)).toMatchObject({ creditBalance: 100 });
  });
});

describe("applying templates and passes", () => {
  it("composes one prompt (template, prompt, passes in order), stores it, and sends it upstream", async () => {
    const creator = await newCaller();
    const user = await newCaller();
    const template = await app.call("createTemplate", {
      token: creator.key,
      json: {
        name: "Seascape",
        text: "a {{mood}} sea under {{sky}}",
        variables: { mood: {}, sky: { default: "a red sky" } },
      },
    });
    const first = await publish(creator, {
      stylePrompt: "ink wash",
      negativePrompt: "photograph",
      fee: 0,
      defaults: { aspectRatio: "3:4" },
    });
    const second = await publish(creator, {
      stylePrompt: "gold leaf",
      negativePrompt: "blur",
      fee: 0,
      defaults: { aspectRatio: "16:9", resolution: "2K" },
    });
    const body = {
      templateId: template.body.id,
      templateVariables: { mood: "stormy" },
      prompt: "with a lighthouse",
      stylePassIds: [first.id, second.id],
    };
    const expected = "a stormy sea under a red sky, with a lighthouse, ink wash, gold leaf";
    const quoted = await app.call("quoteGeneration", {
      token: user.key,
      json: { ...body, models: ["qwen-image-2.0"] },
    });
    expect(quoted.body).toMatchObject({
      prompt: expected,
      negativePrompt: "photograph, blur",
      // The first pass that sets an option gives its default.
      aspectRatio: "3:4",
      resolution: "2K",
    });
    sim.calls.length = 0;
    const done = await generate(user, { ...body, models: ["qwen-image-2.0"] });
    expect(done.status).toBe("completed");
    expect(done.prompt).toBe(expected);
    expect(sim.calls).toHaveLength(1);
    expect(sim.calls[0]?.prompt).toBe(expected);
    expect(sim.calls[0]?.input).toMatchObject({
      negative_prompt: "photograph, blur",
      aspect_ratio: "3:4",
    });
    // The request's own option wins over a pass default; the order of passes is the order given.
    const reversed = await app.call("quoteGeneration", {
      token: user.key,
      json: {
        ...body,
        stylePassIds: [second.id, first.id],
        aspectRatio: "1:1",
        models: ["z-image-turbo"],
      },
    });
    expect(reversed.body).toMatchObject({
      prompt: "a stormy sea under a red sky, with a lighthouse, gold leaf, ink wash",
      aspectRatio: "1:1",
    });

    // The OpenAI-compatible door takes the same fields.
    sim.calls.length = 0;
    const images = await app.call("createImage", {
      token: user.key,
      json: {
        model: "gpt-image-2",
        prompt: "in oils",
        templateId: template.body.id,
        templateVariables: { mood: "calm" },
        stylePassIds: [first.id],
      },
    });
    expect(images.status).toBe(200);
    expect(sim.calls[0]?.prompt).toBe("a calm sea under a red sky, in oils, ink wash");
    const missing = await app.call("createVideoJob", {
      token: user.key,
      json: { model: "veo-3.1", duration: 4, templateId: template.body.id },
    });
    expect(missing.body.error.code).toBe("missing_template_variable");
  });

  it("quotes each model and each pass fee per model result, and holds exactly the total", async () => {
    const creator = await newCaller();
    const user = await newCaller();
    const a = await publish(creator, { fee: 3 });
    const b = await publish(creator, { fee: 5 });
    const models = ["z-image-turbo", "gpt-image-2"];
    const prices = [
      await modelPrice(user, models[0] as string),
      await modelPrice(user, models[1] as string),
    ];
    const quoted = await app.call("quoteGeneration", {
      token: user.key,
      json: { prompt: "a heron", models, stylePassIds: [a.id, b.id] },
    });
    const total = (prices[0] as number) + (prices[1] as number) + 2 * (3 + 5);
    expect(quoted.body.quote).toEqual({
      models: [
        { model: models[0], credits: prices[0] },
        { model: models[1], credits: prices[1] },
      ],
      passFees: [
        { passId: a.id, fee: 3, uses: 2, credits: 6 },
        { passId: b.id, fee: 5, uses: 2, credits: 10 },
      ],
      total,
    });
    const submitted = await app.call("generate", {
      token: user.key,
      json: { prompt: "a heron", models, stylePassIds: [a.id, b.id] },
    });
    expect(submitted.body.cost).toBe(total);
    const { rows } = await app.ctx.db.execute<{ held: string }>(
      sql`select coalesce(sum(amount), 0)::text as held from ledger_holds where reference = ${submitted.body.generationId}`,
    );
    expect(Number(rows[0]?.held)).toBe(total * 10_000); // ledger units
    const done = await waitForGeneration(app, user.key, submitted.body.generationId);
    expect(done.quote).toEqual(quoted.body.quote);
    expect(done.cost).toEqual({ quoted: total, charged: total, refunded: 0 });
    expect(done.results.map((r: { cost: number }) => r.cost)).toEqual([
      (prices[0] as number) + 8,
      (prices[1] as number) + 8,
    ]);
    expect((await balanceOf(user)).creditBalance).toBe(1_000 - total);
  });
});

describe("royalties", () => {
  it("pay the creator their share of each fee when a result is charged, and the platform keeps the rest", async () => {
    const creator = await newCaller(0n);
    const user = await newCaller();
    const pass = await publish(creator, { fee: 5 });
    const cheap = await publish(creator, { fee: 3 });
    const done = await generate(user, {
      models: ["z-image-turbo", "qwen-image-2.0"],
      stylePassIds: [pass.id, cheap.id],
    });
    expect(done.status).toBe("completed");
    // 80% of 5 is 4; 80% of 3 is 2.4 (the ledger counts 1/10,000 credit); each of two results.
    expect((await balanceOf(creator)).earnings).toBe(2 * 4 + 2 * 2.4);
    const transfers = await royaltyTransfers(pass.id);
    expect(transfers.map((t) => [t.amount, t.credit])).toEqual([
      ["40000", `earnings:test:${creator.account.id}`],
      ["40000", `earnings:test:${creator.account.id}`],
    ]);
    const earnings = await earningsOf(creator);
    expect(earnings).toEqual({
      network: "test",
      totalEarned: 12.8,
      available: 12.8,
      pendingPayout: 0,
      paidOut: 0,
      passes: [
        { passId: pass.id, name: "Ink wash", uses: 2, feesCharged: 10, earned: 8 },
        { passId: cheap.id, name: "Ink wash", uses: 2, feesCharged: 6, earned: 4.8 },
      ],
    });
    const entries = await app.call("listTransactions", {
      query: { kind: "royalty" },
      token: creator.key,
    });
    expect(entries.body.data).toHaveLength(4);
    expect(entries.body.data[0]).toMatchObject({ account: "earnings", kind: "royalty" });
  });

  it("are not paid for a failed result, whose fee is refunded with its price", async () => {
    const creator = await newCaller(0n);
    const user = await newCaller();
    const pass = await publish(creator, { fee: 5 });
    sim.always = "contentPolicy";
    const done = await generate(user, {
      models: ["gpt-image-2", "z-image-turbo"],
      stylePassIds: [pass.id],
    });
    const byModel = Object.fromEntries(done.results.map((r) => [r.model, r]));
    expect(byModel["gpt-image-2"]?.status).toBe("failed");
    expect(byModel["z-image-turbo"]?.status).toBe("completed");
    // Only the completed result paid its fee; the failed one refunded price and fee alike.
    expect(done.cost.refunded).toBe(byModel["gpt-image-2"]?.cost);
    expect((await balanceOf(creator)).earnings).toBe(4);
    expect(await royaltyTransfers(pass.id)).toHaveLength(1);
    expect((await balanceOf(user)).creditBalance).toBe(
      1_000 - (byModel["z-image-turbo"]?.cost ?? 0),
    );

    const allFailed = await generate(user, { models: ["gpt-image-2"], stylePassIds: [pass.id] });
    expect(allFailed.status).toBe("failed");
    expect((await balanceOf(creator)).earnings).toBe(4);
    const earnings = await earningsOf(creator);
    expect(earnings.passes[0]).toMatchObject({ uses: 1, earned: 4 });
  });

  it("are not charged when creators use their own pass, which still counts as a use", async () => {
    const creator = await newCaller();
    const pass = await publish(creator, { fee: 5 });
    const price = await modelPrice(creator, "z-image-turbo");
    const quoted = await app.call("quoteGeneration", {
      token: creator.key,
      json: { prompt: "a heron", models: ["z-image-turbo"], stylePassIds: [pass.id] },
    });
    expect(quoted.body.quote.passFees).toEqual([{ passId: pass.id, fee: 0, uses: 1, credits: 0 }]);
    expect(quoted.body.quote.total).toBe(price);
    const done = await generate(creator, { stylePassIds: [pass.id] });
    expect(done.cost.charged).toBe(price);
    expect(await balanceOf(creator)).toMatchObject({ creditBalance: 1_000 - price, earnings: 0 });
    expect(await royaltyTransfers(pass.id)).toEqual([]);
    expect((await earningsOf(creator)).passes[0]).toMatchObject({
      uses: 1,
      feesCharged: 0,
      earned: 0,
    });
  });

  it("are paid exactly once per result under concurrent generations with the same pass, and a replay pays nothing", async () => {
    const creator = await newCaller(0n);
    const users = [await newCaller(), await newCaller(), await newCaller()];
    const pass = await publish(creator, { fee: 5 });
    const submissions = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        app.call("generate", {
          token: users[i % 3]?.key as string,
          json: {
            prompt: `a heron ${i}`,
            models: ["z-image-turbo", "qwen-image-2.0"],
            stylePassIds: [pass.id],
          },
        }),
      ),
    );
    expect(submissions.map((s) => s.status)).toEqual(Array(8).fill(202));
    const done = await Promise.all(
      submissions.map((s, i) =>
        waitForGeneration(app, users[i % 3]?.key as string, s.body.generationId, 60_000),
      ),
    );
    expect(done.every((g) => g.status === "completed")).toBe(true);
    expect((await balanceOf(creator)).earnings).toBe(16 * 4);
    expect(await royaltyTransfers(pass.id)).toHaveLength(16);
    const read = await app.call("getPass", { params: { id: pass.id }, token: creator.key });
    expect(read.body.uses).toBe(16);

    // The charge's transaction run again for a result (a retried job, a second worker): the
    // use is already recorded, so nothing more is paid.
    const generationId = submissions[0]?.body.generationId as string;
    await app.ctx.db.transaction(async (tx) => {
      await payRoyalties(
        { ...app.ctx, db: tx },
        {
          resultId: resultIdOf(generationId, 0),
          generationId,
          network: "test",
          userId: users[0]?.account.id as string,
        },
      );
    });
    expect((await balanceOf(creator)).earnings).toBe(16 * 4);
    expect((await earningsOf(creator)).passes[0]).toMatchObject({ uses: 16, earned: 64 });
  }, 90_000);

  it("are paid while another charge of the same pass has recorded its use and not yet committed", async () => {
    const creator = await newCaller(0n);
    const user = await newCaller();
    const pass = await publish(creator, { fee: 5 });
    // The lock another charge's use row holds on its pass (its foreign key) until it commits.
    // A charge that waited for it would wait for ever when that one waits for it in turn.
    const other = await app.ctx.pool.connect();
    try {
      await other.query("begin");
      await other.query("select 1 from style_passes where id = $1 for key share", [pass.id]);
      const done = await generate(user, { stylePassIds: [pass.id] });
      expect(done.status).toBe("completed");
      expect((await balanceOf(creator)).earnings).toBe(4);
      expect(await royaltyTransfers(pass.id)).toHaveLength(1);
    } finally {
      await other.query("rollback");
      other.release();
    }
  });

  it("are paid at the fee that was quoted, even if the creator changes or archives the pass meanwhile", async () => {
    const creator = await newCaller(0n);
    const user = await newCaller();
    const pass = await publish(creator, { fee: 5 });
    sim.latencyMs = 300;
    sim.always = "slow";
    const submitted = await app.call("generate", {
      token: user.key,
      json: { prompt: "a heron", models: ["gpt-image-2"], stylePassIds: [pass.id] },
    });
    await app.call("updatePass", {
      params: { id: pass.id },
      token: creator.key,
      json: { fee: 50 },
    });
    await app.call("archivePass", { params: { id: pass.id }, token: creator.key });
    const done = await waitForGeneration(app, user.key, submitted.body.generationId);
    sim.latencyMs = 0;
    expect(done.status).toBe("completed");
    expect(done.quote.passFees).toEqual([{ passId: pass.id, fee: 5, uses: 1, credits: 5 }]);
    expect((await balanceOf(creator)).earnings).toBe(4);
  });
});

describe("analytics", () => {
  it("counts uses, distinct users and credits earned per pass and per UTC day", async () => {
    const creator = await newCaller(0n);
    const [ann, bob] = [await newCaller(), await newCaller()];
    const pass = await publish(creator, { fee: 5 });
    const idle = await publish(creator, { fee: 1 });
    await generate(ann, { stylePassIds: [pass.id] });
    await generate(ann, { stylePassIds: [pass.id] });
    const firstDay = app.clock.now().toISOString().slice(0, 10);
    app.clock.advance(24 * 3600 * 1000);
    await generate(bob, { stylePassIds: [pass.id], models: ["z-image-turbo", "qwen-image-2.0"] });
    const today = app.clock.now().toISOString().slice(0, 10);

    const week = await app.request("GET", "/v1/profile/analytics?range=7d", { token: creator.key });
    expect(week.status).toBe(200);
    expect(week.body).toMatchObject({ network: "test", range: "7d", to: today });
    const [stats, quiet] = week.body.passes;
    expect(stats).toMatchObject({ passId: pass.id, uses: 4, uniqueUsers: 2, earned: 16 });
    expect(stats.days).toHaveLength(7);
    const day = (date: string) => stats.days.find((d: { date: string }) => d.date === date);
    expect(day(firstDay)).toEqual({ date: firstDay, uses: 2, uniqueUsers: 1, earned: 8 });
    expect(day(today)).toEqual({ date: today, uses: 2, uniqueUsers: 1, earned: 8 });
    expect(stats.days.reduce((n: number, d: { uses: number }) => n + d.uses, 0)).toBe(4);
    expect(quiet).toMatchObject({ passId: idle.id, uses: 0, uniqueUsers: 0, earned: 0 });
    const month = await app.request("GET", "/v1/profile/analytics?range=30d", {
      token: creator.key,
    });
    expect(month.body.passes[0].days).toHaveLength(30);
    // A week later the first day has left the 7-day range.
    app.clock.advance(6 * 24 * 3600 * 1000);
    const later = await app.call("getPassAnalytics", { token: creator.key });
    expect(later.body.passes[0]).toMatchObject({ uses: 2, uniqueUsers: 1, earned: 8 });
    const bad = await app.call("getPassAnalytics", { query: { range: "90d" }, token: creator.key });
    expect(bad.status).toBe(400);
  });
});
