import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { Runner } from "graphile-worker";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  anvilAccount,
  LOCAL_ROLES,
  type LocalChain,
  privateKeyOf,
} from "../../src/chain/local-chain.js";
import { SUITE_DIR } from "../../src/http/suite.js";
import { startWorker } from "../../src/jobs/worker.js";
import { creditsFromJson } from "../../src/lib/credits.js";
import {
  createFundedCaller,
  startTestApp,
  type TestApp,
  waitForGeneration,
} from "../helpers/app.js";
import { injectWallet, launchChromium } from "../helpers/browser.js";
import { paymentEnv, startTestChain, treasury, usdcBalance } from "../helpers/chain.js";
import { repoRoot } from "../helpers/cli.js";
import { solidPng } from "../helpers/images.js";
import { freePort } from "../helpers/ports.js";
import { applyFaultRequest, type Simulator, startSimulator } from "../simulator/upstream.js";

/**
 * The Creator Suite end to end, in Debian's chromium: one browser and one stack (PostgreSQL,
 * anvil standing in for Base Sepolia, the worker, sandbox channels, and a simulated upstream
 * that refuses every prompt for one model). The wallet is a test EIP-1193 provider holding one
 * of anvil's public keys, so sign-in and the pack purchase are really signed and settled.
 * The steps run in order, as a person would: sign in, buy credits, generate, and so on.
 */

const SCREENSHOTS = path.join(repoRoot, "test/e2e/screenshots");
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };
// Served only by the simulated upstream, which refuses every prompt: a failed result.
const REFUSING_MODEL = "qwen-image-2.0";
// First tried on a simulated upstream that answers 500, then on the sandbox: a failover.
const FAILOVER_MODEL = "wan2.7-image";

let chain: LocalChain;
let sim: Simulator;
let app: TestApp;
let worker: Runner;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const wallet = anvilAccount(LOCAL_ROLES.demoPayer);

/** A DataTransfer holding one PNG, made in the page (a string: the tests compile without DOM types). */
const DATA_TRANSFER = (pngBase64: string) => `(() => {
  const bytes = Uint8Array.from(atob("${pngBase64}"), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
  return transfer;
})()`;

const url = (p: string) => `${app.url}/app${p}`;

/** Desktop and phone-width screenshots of the page as it is now. */
async function screenshots(p: Page, name: string) {
  await p.setViewportSize(DESKTOP);
  await p.screenshot({ path: path.join(SCREENSHOTS, `${name}-desktop.png`), fullPage: true });
  await p.setViewportSize(PHONE);
  await p.screenshot({ path: path.join(SCREENSHOTS, `${name}-phone.png`), fullPage: true });
  await p.setViewportSize(DESKTOP);
}

/** The prompt by its role: a wrapping label's text would include what the field holds. */
const promptField = () => page.getByRole("textbox", { name: "Prompt", exact: true });

const storedKey = () =>
  page.evaluate<string>('JSON.parse(localStorage.getItem("polyforge.auth") ?? "null")?.apiKey');

beforeAll(async () => {
  // npm install builds the app; a checkout that skipped it is built here, once.
  if (!existsSync(path.join(SUITE_DIR, "index.html")))
    execFileSync("npm", ["run", "build:app"], { cwd: repoRoot, stdio: "ignore" });
  await mkdir(SCREENSHOTS, { recursive: true });
  chain = await startTestChain("test");
  sim = await startSimulator();
  applyFaultRequest(sim, { fault: "contentPolicy" });
  applyFaultRequest(sim, { provider: "fal", fault: "error500" });
  const port = await freePort();
  app = await startTestApp({
    env: {
      ...paymentEnv([chain]),
      PORT: String(port),
      // The treasury pays creators out; one credit of earnings is enough to try it.
      PAYOUT_TEST_KEY: privateKeyOf(anvilAccount(LOCAL_ROLES.treasury)),
      PAYOUT_MIN_CREDITS: "1",
      // Download links must open in the browser, which reaches the app at this address.
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      CHANNELS: JSON.stringify([
        {
          id: "refusing-upstream",
          provider: "openai",
          baseUrl: `${sim.url}/openai`,
          apiKey: "sk-sim",
          networks: ["test"],
          models: { [REFUSING_MODEL]: "qwen-image" },
          priority: 0,
        },
        {
          id: "failing-upstream",
          provider: "fal",
          baseUrl: `${sim.url}/fal`,
          apiKey: "fal-sim",
          networks: ["test"],
          models: { [FAILOVER_MODEL]: "fal-ai/wan" },
          priority: 0,
        },
        {
          id: "sandbox-primary",
          provider: "sandbox",
          networks: ["test"],
          models: "*",
          priority: 1,
        },
      ]),
    },
  });
  worker = await startWorker(app.ctx);
  browser = await launchChromium();
  context = await browser.newContext({ viewport: DESKTOP });
  await injectWallet(context, wallet, chain.chainId);
  page = await context.newPage();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await worker?.stop();
  await app?.close();
  await sim?.close();
  await chain?.stop();
});

describe("the Creator Suite in a browser", () => {
  it("shows pricing and each model's page without signing in", async () => {
    const root = await fetch(app.url, { redirect: "manual" });
    expect(root.status).toBe(302);
    expect(root.headers.get("location")).toBe("/app/");

    await page.goto(url("/pricing"));
    await expect.poll(() => page.locator("[data-pack]").count()).toBe(3);
    await expect
      .poll(() => page.locator("[data-testid=model-prices] tbody tr").count())
      .toBe(
        (await app.request("GET", "/v1/models")).body.data.filter(
          (m: { type: string }) => m.type === "image" || m.type === "video",
        ).length,
      );
    // Text and audio models beside them, each priced per its unit.
    await expect.poll(() => page.locator("[data-testid=usage-prices] tbody tr").count()).toBe(24);
    const gpt = page.locator("[data-testid=usage-prices] tr", { hasText: "gpt-5.5" });
    expect(await gpt.innerText()).toContain("350 in / 2100 out credits per 1M tokens");
    const piano = page.locator("[data-testid=usage-prices] tr", { hasText: "minimax-music-1.5" });
    expect(await piano.innerText()).toContain("2.1 credits per clip");
    expect(await page.locator("[data-pack=creator]").innerText()).toMatch(
      /\$24[\s\S]*3,000 credits[\s\S]*creator/,
    );
    expect(await page.locator("[data-testid=network]").count()).toBe(0);
    await screenshots(page, "pricing");

    await page.getByRole("link", { name: "GPT Image 2" }).first().click();
    await page.getByRole("heading", { name: "GPT Image 2" }).waitFor();
    expect(await page.locator("[data-testid=price-table] tbody tr").count()).toBeGreaterThan(0);
    expect(await page.locator(".facts").innerText()).toContain("Aspect ratios");
    await screenshots(page, "model");
  });

  it("signs in with the browser wallet (EIP-4361) and shows the network", async () => {
    await page.goto(url("/signin"));
    await screenshots(page, "signin");
    await page.getByRole("button", { name: "Sign in with wallet" }).click();
    await page.getByRole("heading", { name: "Playground" }).waitFor();
    const banner = await page.locator("[data-testid=network]").innerText();
    expect(banner).toContain("Test mode");
    expect(banner).toContain("Base Sepolia");
    expect(banner).toContain("nothing real is spent");
    // The key the app made for the browser is the wallet's account's, on the test network.
    const key = await storedKey();
    expect(key).toMatch(/^sk_test_/);
    const account = await app.request("GET", "/v1/account", { token: key });
    expect(account.status).toBe(200);
    expect(account.body.walletAddress?.toLowerCase()).toBe(wallet.address.toLowerCase());
  });

  it("buys a pack with the wallet through x402: balance and tier change without a reload", async () => {
    await page.getByRole("link", { name: "Credits" }).click();
    await expect
      .poll(() => page.locator("[data-testid=credit-balance]").innerText())
      .toBe("0 credits");
    expect(await page.locator("[data-testid=tier]").innerText()).toBe("free");
    const treasuryBefore = await usdcBalance(chain, treasury);

    await page.getByRole("button", { name: /^creator:/ }).click();
    const summary = await page.locator("[data-testid=pay-summary]").innerText();
    expect(summary).toContain("24.000000 USDC");
    expect(summary).toContain("Base Sepolia (eip155:84532)");
    expect(summary).toContain("nothing real is spent");
    await screenshots(page, "credits-confirm");
    await page.getByRole("button", { name: "Sign and pay" }).click();

    await expect
      .poll(() => page.locator("[data-testid=credit-balance]").innerText(), { timeout: 20_000 })
      .toBe("3,000 credits");
    expect(await page.locator("[data-testid=tier]").innerText()).toBe("creator");
    const tx = await page.locator("[data-testid=purchase] code").innerText();
    expect(tx).toMatch(/^0x[0-9a-f]{64}$/);
    await expect.poll(() => page.locator("[data-testid=payments] tbody tr").count()).toBe(1);
    // Settled on the local chain: the treasury has the USDC.
    expect((await usdcBalance(chain, treasury)) - treasuryBefore).toBe(24_000_000n);
    await screenshots(page, "credits");
  });

  it("generates with two models: quote first, then both results with cost and routing", async () => {
    await page.getByRole("link", { name: "Playground" }).click();
    await promptField().fill("a lighthouse at dusk, watercolour");
    await page.locator('input[value="gpt-image-2"]').check();
    await page.locator('input[value="z-image-turbo"]').check();
    // The quote follows the form: the API's own quote for each resolution picked.
    for (const resolution of ["2K", "1K"]) {
      await page.getByLabel("Resolution").selectOption(resolution);
      const expected = await app.request("POST", "/v1/generate/quote", {
        token: await storedKey(),
        json: { prompt: "x", models: ["gpt-image-2", "z-image-turbo"], resolution },
      });
      expect(expected.status).toBe(200);
      await expect
        .poll(() => page.locator("[data-testid=quote-total]").innerText())
        .toBe(`${expected.body.quote.total} credits`);
    }

    await page.getByRole("button", { name: "Generate" }).click();
    const cards = page.locator(".results .result");
    await expect.poll(() => cards.count(), { timeout: 20_000 }).toBe(2);
    await expect
      .poll(() => page.locator(".results [data-testid=result-status]").allInnerTexts(), {
        timeout: 30_000,
      })
      .toEqual(["completed", "completed"]);
    for (const model of ["gpt-image-2", "z-image-turbo"]) {
      const card = page.locator(`.results .result[data-model="${model}"]`);
      expect(await card.locator("[data-testid=result-cost]").innerText()).toMatch(
        /^(\d+) quoted · \1 charged · 0 refunded$/,
      );
      expect(await card.locator("[data-testid=result-upstream]").innerText()).toMatch(
        /^sandbox-primary \((no failover|failed over)\)$/,
      );
      // The image really loads from its signed download link.
      const img = card.locator("img");
      await expect
        .poll(() => img.evaluate((el) => (el as unknown as { naturalWidth: number }).naturalWidth))
        .toBeGreaterThan(0);
    }
    // The README's picture: the form beside both results, from the top of the page.
    await page.evaluate("window.scrollTo(0, 0)");
    await page.screenshot({ path: path.join(SCREENSHOTS, "playground-readme.png") });
    await screenshots(page, "playground");
  });

  it("uploads reference images by picking and by dropping, and quotes with them", async () => {
    const quoted: string[] = [];
    page.on("request", (r) => {
      if (r.url().endsWith("/v1/generate/quote")) quoted.push(r.postData() ?? "");
    });
    await page.locator("input[type=file]").setInputFiles({
      name: "picked.png",
      mimeType: "image/png",
      buffer: await solidPng(64, 64, "#c33"),
    });
    await expect.poll(() => page.locator("[data-testid=reference]").count()).toBe(1);

    const dropped = (await solidPng(48, 48, "#3c3")).toString("base64");
    // A real drop event carrying a File, as the browser makes when a file is dragged in.
    const transfer = await page.evaluateHandle(DATA_TRANSFER(dropped));
    await page
      .locator("[data-testid=references]")
      .dispatchEvent("drop", { dataTransfer: transfer });
    await expect.poll(() => page.locator("[data-testid=reference]").count()).toBe(2);
    await expect
      .poll(() => quoted.some((b) => (b.match(/\/v1\/uploads\/img_/g) ?? []).length === 2))
      .toBe(true);
    // A file that is not an image is refused with the API's code.
    await page.locator("input[type=file]").setInputFiles({
      name: "notes.txt",
      mimeType: "text/plain",
      buffer: Buffer.from("not an image"),
    });
    await page.getByText("invalid_image").waitFor();
    expect(await page.locator("[data-testid=reference]").count()).toBe(2);
  });

  it("chats with a text model: the reply streams in, then its tokens and what it cost", async () => {
    const key = await storedKey();
    const before = creditsFromJson(
      (await app.request("GET", "/v1/balance", { token: key })).body.creditBalance,
    ) as bigint;
    await page.goto(url("/chat"));
    await page.getByRole("heading", { name: "Chat" }).waitFor();
    await page.getByLabel("Model").selectOption("claude-haiku-4.5");
    await page.getByRole("textbox", { name: "Message" }).fill("tell me about tides");
    await page.getByRole("button", { name: "Send" }).click();
    const billing = page.locator("[data-testid=chat-billing]");
    await billing.waitFor({ timeout: 30_000 });
    expect(await page.locator("[data-testid=turn-assistant]").innerText()).toContain(
      'On "tell me about tides":',
    );
    const text = await billing.innerText();
    expect(text).toMatch(
      /\d+ prompt \+ \d+ reply tokens · charged [\d.]+ credits? of [\d.]+ credits? held/,
    );
    expect(text).toContain("served by sandbox-primary");
    const charged = creditsFromJson(Number(/charged ([\d.]+)/.exec(text)?.[1])) as bigint;
    expect(charged).toBeGreaterThan(0n);
    const after = creditsFromJson(
      (await app.request("GET", "/v1/balance", { token: key })).body.creditBalance,
    ) as bigint;
    expect(before - after).toBe(charged);
    await screenshots(page, "chat");
  });

  it("shows a failed result's code and its refund", async () => {
    const key = await storedKey();
    const before = (await app.request("GET", "/v1/balance", { token: key })).body.creditBalance;
    await page.goto(url("/playground"));
    await promptField().fill("a prompt the upstream refuses");
    await page.locator(`input[value="${REFUSING_MODEL}"]`).check();
    await page.locator("[data-testid=quote-total]").waitFor();
    await page.getByRole("button", { name: "Generate" }).click();
    const error = page.locator(
      `.result[data-model="${REFUSING_MODEL}"] [data-testid=result-error]`,
    );
    await error.waitFor({ timeout: 30_000 });
    expect(await error.innerText()).toMatch(/content_policy[\s\S]*Refunded 6 credits\./);
    expect(await page.locator("[data-testid=generation-summary]").innerText()).toContain(
      "refunded 6",
    );
    expect((await app.request("GET", "/v1/balance", { token: key })).body.creditBalance).toBe(
      before,
    );
    await screenshots(page, "playground-failed");
  });

  it("says which channel served a result and that it failed over", async () => {
    await promptField().fill("a kite over the dunes");
    await page.locator(`input[value="${REFUSING_MODEL}"]`).uncheck();
    await page.locator(`input[value="${FAILOVER_MODEL}"]`).check();
    await page.locator("[data-testid=quote-total]").waitFor();
    await page.getByRole("button", { name: "Generate" }).click();
    const card = page.locator(`.result[data-model="${FAILOVER_MODEL}"]`);
    await expect
      .poll(() => card.locator("[data-testid=result-status]").innerText(), { timeout: 30_000 })
      .toBe("completed");
    expect(await card.locator("[data-testid=result-upstream]").innerText()).toBe(
      "sandbox-primary (failed over)",
    );
    expect(await card.innerText()).toMatch(/failing-upstream: upstream_500/);
    expect(await card.locator("[data-testid=result-cost]").innerText()).toMatch(
      /^(\d+) quoted · \1 charged · 0 refunded$/,
    );
  });

  it("creates a style pass and lists it", async () => {
    await page.getByRole("link", { name: "Creators" }).click();
    await page.getByText("You have not published a style pass yet.").waitFor();
    await page.getByLabel("Name", { exact: true }).fill("Ink wash");
    await page.getByLabel(/^Style prompt/).fill("ink wash painting, loose brushwork");
    await page.getByLabel(/^Fee per model result/).fill("3");
    await page.getByLabel(/^Tags/).fill("ink, painting");
    await page.getByLabel(/^Preview image/).setInputFiles({
      name: "ink.png",
      mimeType: "image/png",
      buffer: await solidPng(96, 96, "#222"),
    });
    await page.getByAltText("Preview of the new pass").waitFor();
    await page.getByRole("button", { name: "Publish pass" }).click();
    const listed = page.locator("[data-testid=my-passes] li");
    await expect.poll(() => listed.count()).toBe(1);
    expect(await listed.innerText()).toMatch(/Ink wash[\s\S]*3 credits per result[\s\S]*active/);
    // Its preview is the upload, served by its signed link.
    await expect
      .poll(() =>
        listed
          .getByAltText("Preview of Ink wash")
          .evaluate((el) => (el as unknown as { naturalWidth: number }).naturalWidth),
      )
      .toBe(96);
    const mine = await app.request("GET", "/v1/passes?creator=me", { token: await storedKey() });
    expect(mine.body.data.map((p: { name: string }) => p.name)).toEqual(["Ink wash"]);
    // Its analytics: a bar per day of the range, as many days as the API reports.
    for (const range of ["7d", "30d"] as const) {
      await page.getByLabel(range === "7d" ? "7 days" : "30 days").check();
      const api = await app.request("GET", `/v1/profile/analytics?range=${range}`, {
        token: await storedKey(),
      });
      await expect
        .poll(() => page.locator("[data-testid=bar-uses]").count())
        .toBe(api.body.passes[0].days.length);
    }
    await page.getByLabel("7 days").check();
    await screenshots(page, "creators");
  });

  it("pays a creator's royalties out to the wallet in USDC", async () => {
    // Someone else's generation applies the pass (fee 3): the creator earns its share.
    const pass = (await app.request("GET", "/v1/passes?creator=me", { token: await storedKey() }))
      .body.data[0];
    const user = await createFundedCaller(app.ctx, 100n);
    const submitted = await app.request("POST", "/v1/generate", {
      token: user.key,
      json: { prompt: "a harbour", models: ["z-image-turbo"], stylePassIds: [pass.id] },
    });
    expect(submitted.status).toBe(202);
    await waitForGeneration(app, user.key, submitted.body.generationId);
    const earned = (await app.request("GET", "/v1/profile/earnings", { token: await storedKey() }))
      .body.available;
    expect(earned).toBeGreaterThan(0);
    const walletBefore = await usdcBalance(chain, wallet.address);

    await page.reload();
    await page
      .getByRole("button", {
        name: `Pay out ${earned} credit${earned === 1 ? "" : "s"} to my wallet`,
      })
      .click();
    const row = page.locator("[data-testid=payouts] tbody tr");
    await expect.poll(() => row.innerText(), { timeout: 20_000 }).toMatch(/\bpaid\b[\s\S]*0x/);
    expect((await usdcBalance(chain, wallet.address)) - walletBefore).toBe(
      // One USDC base unit per ledger unit (1/10,000 credit).
      creditsFromJson(earned),
    );
    await expect
      .poll(() => page.locator("[data-testid=earnings]").innerText())
      .toContain("0 credits available");
  });

  it("edits a style pass in place", async () => {
    await page.getByRole("button", { name: "Edit Ink wash" }).click();
    await page.getByLabel("Pass fee (credits)").fill("5");
    await page.getByRole("button", { name: "Save changes" }).click();
    await expect
      .poll(() => page.locator("[data-testid=my-passes] li").innerText())
      .toMatch(/5 credits per result/);
    const mine = await app.request("GET", "/v1/passes?creator=me", { token: await storedKey() });
    expect(mine.body.data[0].fee).toBe(5);
  });

  it("saves a template with its variables, previews it, and composes it in the playground", async () => {
    await page.getByLabel("Template name").fill("Seascape");
    await page.getByLabel(/^Text, with/).fill("a {{mood}} sea under {{sky}}");
    await page.getByLabel("mood: allowed values").fill("calm, stormy");
    await page.getByLabel("sky: default").fill("a red sky");
    expect(await page.locator("[data-testid=template-preview]").innerText()).toBe(
      "a calm sea under a red sky",
    );
    await page.getByRole("button", { name: "Save template" }).click();
    await expect.poll(() => page.locator("[data-testid=my-templates] li").count()).toBe(1);

    await page.getByRole("link", { name: "Playground" }).click();
    await page.getByLabel("Prompt template").selectOption({ label: "Seascape" });
    await page.getByLabel(/^mood/).selectOption("stormy");
    await page.getByLabel("Ink wash").check();
    await page.locator('input[value="z-image-turbo"]').check();
    // The API composes it: the template filled in, then the pass's fragment.
    await expect
      .poll(() => page.locator("[data-testid=final-prompt]").innerText())
      .toBe("a stormy sea under a red sky, ink wash painting, loose brushwork");
    await screenshots(page, "playground-template");
  });

  it("lists the history, searches prompts, and shows a generation's money record", async () => {
    await page.getByRole("link", { name: "Gallery" }).click();
    const tiles = page.locator("[data-testid=gallery] li");
    await expect.poll(() => tiles.count()).toBe(3);
    await page.getByLabel("Search prompts").fill("lighthouse");
    await expect.poll(() => tiles.count()).toBe(1);
    await tiles.first().getByRole("button").click();
    const detail = page.locator("[data-testid=detail]");
    expect(await detail.locator("[data-testid=money]").innerText()).toMatch(
      /^Quoted (\d+) · charged \1 · refunded 0 credits$/,
    );
    await expect.poll(() => detail.locator("table tbody tr").count()).toBeGreaterThan(0);
    await screenshots(page, "gallery");
    // The share link is the signed download URL: it opens with no key.
    await detail.getByRole("button", { name: "Share link" }).click();
    const shared = await detail.getByRole("status").locator("a").getAttribute("href");
    const opened = await fetch(shared ?? "");
    expect(opened.status).toBe(200);
    expect(opened.headers.get("content-type")).toMatch(/^image\//);
    expect(await detail.getByRole("link", { name: "Download", exact: true }).count()).toBe(2);
    await page.getByLabel("Search prompts").fill("");
    await page.getByLabel("Status").selectOption("failed");
    await expect.poll(() => tiles.count()).toBe(1);
    expect(await tiles.first().innerText()).toContain("refuses");
    await tiles.first().getByRole("button").click();
    await page.getByRole("button", { name: "Reuse this prompt" }).click();
    await page.getByRole("heading", { name: "Playground" }).waitFor();
    expect(await promptField().inputValue()).toBe("a prompt the upstream refuses");
  });

  it("runs a video model and shows the video", async () => {
    await page.getByRole("link", { name: "Playground" }).click();
    await promptField().fill("waves at night");
    await page.getByLabel("video").check();
    await page.locator('input[value="veo3.1-fast"]').check();
    await expect.poll(() => page.getByLabel("Duration").inputValue()).toBe("8");
    await page.locator("[data-testid=quote-total]").waitFor();
    await page.getByRole("button", { name: "Generate" }).click();
    const card = page.locator('.result[data-model="veo3.1-fast"]');
    await expect
      .poll(() => card.locator("[data-testid=result-status]").innerText(), { timeout: 60_000 })
      .toBe("completed");
    // A player for MP4; the sandbox's animated WebP is shown as the moving image it is.
    const media = card.locator("video, img");
    await expect.poll(() => media.getAttribute("src")).toMatch(/\/v1\/download\?/);
    await expect
      .poll(() =>
        media.evaluate(
          (el) =>
            (el as unknown as { naturalWidth?: number; videoWidth?: number }).naturalWidth ||
            (el as unknown as { videoWidth?: number }).videoWidth ||
            0,
        ),
      )
      .toBeGreaterThan(0);
    expect(await card.innerText()).toMatch(/Frame rate\s+\d+ fps/);
    await screenshots(page, "playground-video");
  });

  it("saves a two-step workflow, shows its graph, runs it and follows each step", async () => {
    await page.getByRole("link", { name: "Studio" }).click();
    await page.getByText("No saved workflows yet.").waitFor();
    await page.getByLabel("Workflow name").fill("sketch, then paint");
    const first = page.locator("[data-step='0']");
    await first.getByLabel("Step id").fill("sketch");
    await first.getByLabel("Model").selectOption("z-image-turbo");
    await first.getByRole("textbox", { name: "Prompt" }).fill("a lighthouse, pencil");
    await page.getByRole("button", { name: "Add a step" }).click();
    const second = page.locator("[data-step='1']");
    await second.getByLabel("Step id").fill("paint");
    await second.getByLabel("Model").selectOption("gpt-image-2");
    await second.getByLabel("Takes images of").selectOption("sketch");
    await second
      .getByRole("textbox", { name: "Prompt" })
      .fill("the same lighthouse, as a watercolour");
    await page.getByRole("button", { name: "Save workflow" }).click();
    const card = page.locator("[data-testid=workflows] > li");
    await expect.poll(() => card.count()).toBe(1);
    expect(await card.locator(".graph").innerText()).toMatch(
      /sketch: z-image-turbo[\s\S]*paint: gpt-image-2 ← images of sketch/,
    );

    await page.getByRole("button", { name: "Run sketch, then paint" }).click();
    await expect
      .poll(() => page.locator("[data-testid=run-status]").innerText(), { timeout: 30_000 })
      .toMatch(/: completed · quoted (\d+), charged \1, refunded 0 · reservation settled$/);
    for (const step of ["sketch", "paint"]) {
      const done = page.locator(`[data-step-id=${step}]`);
      expect(await done.locator("h4").innerText()).toContain("completed");
      expect(await done.locator("[data-testid=result-status]").innerText()).toBe("completed");
    }
    await screenshots(page, "studio");

    await page.getByLabel("Credits to reserve").fill("50");
    await page.getByRole("button", { name: "Reserve" }).click();
    await expect
      .poll(() => page.locator("[data-testid=reservation]").innerText())
      .toMatch(/active · 50 credits reserved/);
    await page.getByRole("button", { name: "Settle" }).click();
    await expect
      .poll(() => page.locator("[data-testid=reservation]").innerText())
      .toMatch(/settled/);
  });

  it("creates a key with spend limits, shows it once and its limits in the list, and revokes it", async () => {
    await page.getByRole("link", { name: "Settings" }).click();
    await page.getByLabel("Name", { exact: true }).fill("laptop");
    await page.getByLabel("Credit limit (total)").fill("50");
    await page.getByLabel("Credit limit per day").fill("5");
    await page.getByRole("button", { name: "Create key" }).click();
    const secret = await page.locator("[data-testid=new-key]").innerText();
    expect(secret).toMatch(/^sk_test_[A-Za-z0-9]{64}$/);
    expect((await app.request("GET", "/v1/balance", { token: secret })).status).toBe(200);
    const row = page.locator("tr", { has: page.getByRole("button", { name: /^Revoke laptop/ }) });
    await expect.poll(() => row.innerText()).toMatch(/0 \/ 50\s+0 \/ 5/);
    // The limit is the server's: a request past the day's 5 credits is refused for this key.
    const over = await app.request("POST", "/v1/generate", {
      token: secret,
      json: { prompt: "a lighthouse", models: ["gpt-image-2", "nano-banana-pro"] },
    });
    expect(over.status).toBe(402);
    expect(over.body.error).toMatchObject({ code: "key_limit_exceeded", limit: "perDay", max: 5 });
    await screenshots(page, "settings");

    await page.getByRole("button", { name: /^Revoke laptop/ }).click();
    await expect.poll(() => page.getByRole("button", { name: /^Revoke laptop/ }).count()).toBe(0);
    const refused = await app.request("GET", "/v1/balance", { token: secret });
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe("invalid_api_key");
  });

  it("shows and rotates the webhook secret, and an MCP entry for this key", async () => {
    await page.getByRole("button", { name: "Show secret" }).click();
    const first = await page.locator("[data-testid=webhook-secret]").innerText();
    expect(first).toMatch(/^whsec_/);
    await page.getByRole("button", { name: "Rotate" }).click();
    await expect
      .poll(() => page.locator("[data-testid=webhook-secret]").innerText())
      .not.toBe(first);
    const api = await app.request("GET", "/v1/webhooks/secret", { token: await storedKey() });
    expect(await page.locator("[data-testid=webhook-secret]").innerText()).toBe(api.body.secret);
    const snippet = JSON.parse(await page.locator("[data-testid=mcp-snippet]").innerText());
    expect(snippet.mcpServers.polyforge.url).toBe(`${app.url}/mcp`);
  });

  it("signs out by itself once its own key is revoked", async () => {
    const own = await storedKey();
    await page.getByRole("button", { name: /^Revoke Creator Suite \(browser\)/ }).click();
    await expect
      .poll(async () => (await app.request("GET", "/v1/balance", { token: own })).status)
      .toBe(401);
    await page.getByRole("link", { name: "Credits" }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    expect(await page.evaluate<string | null>('localStorage.getItem("polyforge.auth")')).toBeNull();
  });

  it("signs in by pasting an API key, with the keyboard only, and refuses a wrong one", async () => {
    const caller = await createFundedCaller(app.ctx, 500n);
    const other = await browser.newContext({ viewport: DESKTOP });
    const p = await other.newPage();
    try {
      await p.goto(url("/signin"));
      await p.getByLabel("API key").fill(`sk_test_${"x".repeat(64)}`);
      await p.getByRole("button", { name: "Use this key" }).click();
      await p.getByText("invalid_api_key").waitFor();

      // Keyboard only: focus the field, type, Enter submits.
      await p.getByLabel("API key").fill("");
      await p.getByLabel("API key").focus();
      await p.keyboard.type(caller.key);
      await p.keyboard.press("Enter");
      await p.getByRole("heading", { name: "Playground" }).waitFor();
      expect(await p.locator("[data-testid=network]").innerText()).toContain(
        "nothing real is spent",
      );
      await p.getByRole("link", { name: "Credits" }).click();
      await expect
        .poll(() => p.locator("[data-testid=credit-balance]").innerText())
        .toBe("500 credits");
    } finally {
      await other.close();
    }
  });
});
