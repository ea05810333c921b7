import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { envExample, withReadmeTable } from "../../scripts/config-docs.js";
import { ConfigError, configSchema, loadConfig } from "../../src/config.js";

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error("expected the configuration to be refused");
}

describe("configuration", () => {
  it("has working defaults for development", () => {
    const config = loadConfig({});
    expect(config.env).toBe("development");
    expect(config.http.port).toBe(3000);
    expect(config.http.publicUrl).toBe("http://localhost:3000");
    expect(config.auth.siweDomain).toBe("localhost:3000");
    expect(config.database.url).toBeUndefined();
  });

  it("names every offending variable in one error, without echoing values", () => {
    const found = problems({
      PORT: "eighty",
      LOG_LEVEL: "loud",
      DATABASE_URL: "mysql://user:hunter2@db/x",
    });
    expect(found).toHaveLength(3);
    expect(found.some((p) => p.startsWith("PORT:"))).toBe(true);
    expect(found.some((p) => p.startsWith("LOG_LEVEL:"))).toBe(true);
    expect(found.some((p) => p.startsWith("DATABASE_URL:"))).toBe(true);
    expect(found.join("\n")).not.toContain("hunter2");
  });

  it("requires a database, a public URL and a URL signing key in production", () => {
    const found = problems({ NODE_ENV: "production" });
    expect(found.map((p) => p.split(":")[0]).sort()).toEqual([
      "DATABASE_URL",
      "PUBLIC_URL",
      "URL_SIGNING_SECRET",
    ]);
  });

  it("presumes a worker dead within 25 s by default, and never after one late heartbeat", () => {
    expect(loadConfig({}).worker).toMatchObject({ heartbeatMs: 5_000, deadAfterMs: 20_000 });
    expect(
      problems({ WORKER_HEARTBEAT_SECONDS: "10", WORKER_DEAD_AFTER_SECONDS: "15" }).map(
        (p) => p.split(":")[0],
      ),
    ).toEqual(["WORKER_DEAD_AFTER_SECONDS"]);
    expect(
      loadConfig({ WORKER_HEARTBEAT_SECONDS: "1", WORKER_DEAD_AFTER_SECONDS: "3" }).worker,
    ).toMatchObject({ heartbeatMs: 1_000, deadAfterMs: 3_000 });
  });

  it("refuses SSRF exemptions in production", () => {
    const found = problems({
      NODE_ENV: "production",
      DATABASE_URL: "postgres://db/polyforge",
      PUBLIC_URL: "https://api.polyforge.example",
      URL_SIGNING_SECRET: "x".repeat(32),
      SSRF_ALLOW_HOSTS: "127.0.0.1:8080",
    });
    expect(found.map((p) => p.split(":")[0])).toEqual(["SSRF_ALLOW_HOSTS"]);
  });

  it("takes payout keys per network, refusing one without its chain or shared with the facilitator", () => {
    const key = `0x${"ab".repeat(32)}`;
    const chain = {
      X402_LIVE_RPC_URL: "http://127.0.0.1:8545",
      X402_LIVE_PAY_TO: `0x${"11".repeat(20)}`,
      X402_LIVE_FACILITATOR_URL: "http://127.0.0.1:4020",
    };
    const config = loadConfig({ ...chain, PAYOUT_LIVE_KEY: key, PAYOUT_MIN_CREDITS: "250" });
    expect(config.payouts).toEqual({
      keys: { live: key },
      minCredits: 2_500_000n, // ledger units: 250 credits
      receiptTimeoutMs: 30_000,
    });
    expect(loadConfig({}).payouts.minCredits).toBe(10_000_000n);
    expect(problems({ PAYOUT_LIVE_KEY: key })).toEqual([
      "PAYOUT_LIVE_KEY: needs X402_LIVE_RPC_URL (payouts are sent over it)",
    ]);
    // polyforge dev starts a test chain of its own.
    expect(loadConfig({ PAYOUT_TEST_KEY: key }).payouts.keys).toEqual({ test: key });
    const shared = problems({
      ...chain,
      X402_LIVE_FACILITATOR_URL: "",
      X402_LIVE_FACILITATOR_KEY: key,
      PAYOUT_LIVE_KEY: key,
    });
    expect(shared).toEqual(["PAYOUT_LIVE_KEY: must not be the facilitator's key"]);
    expect(problems({ PAYOUT_TEST_KEY: "0x1234" })[0]).toMatch(/^PAYOUT_TEST_KEY:/);
  });

  it("treats an empty variable as unset", () => {
    expect(loadConfig({ PORT: "" }).http.port).toBe(3000);
  });

  it("derives the sign-in domain from PUBLIC_URL", () => {
    const config = loadConfig({ PUBLIC_URL: "https://api.polyforge.example/" });
    expect(config.http.publicUrl).toBe("https://api.polyforge.example");
    expect(config.auth.siweDomain).toBe("api.polyforge.example");
  });

  it("is documented, variable by variable, in .env.example and the README", () => {
    const example = readFileSync(new URL("../../.env.example", import.meta.url), "utf8");
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    expect(example).toBe(envExample());
    expect(readme).toBe(withReadmeTable(readme));
    for (const name of Object.keys(configSchema.shape)) {
      expect(example).toContain(`# ${name}=`);
      expect(readme).toContain(`| \`${name}\` |`);
    }
  });
});
