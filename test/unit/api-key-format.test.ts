import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { apiKeyNetwork, generateApiKey } from "../../src/domains/keys/format.js";
import { randomBase62, sha256Hex } from "../../src/lib/secrets.js";

describe("API key format", () => {
  it("is the network prefix and 64 Base62 characters", () => {
    expect(generateApiKey("live")).toMatch(/^sk_live_[0-9A-Za-z]{64}$/);
    expect(generateApiKey("test")).toMatch(/^sk_test_[0-9A-Za-z]{64}$/);
  });

  it("never repeats", () => {
    const keys = new Set(Array.from({ length: 1000 }, () => generateApiKey("test")));
    expect(keys.size).toBe(1000);
  });

  it("draws every Base62 character and nothing else", () => {
    const seen = new Set(randomBase62(20_000));
    expect(seen.size).toBe(62);
    for (const c of seen) expect(c).toMatch(/[0-9A-Za-z]/);
  });

  it("tells the network of a well-formed key and rejects malformed ones", () => {
    expect(apiKeyNetwork(generateApiKey("live"))).toBe("live");
    expect(apiKeyNetwork(generateApiKey("test"))).toBe("test");
    const suffix = "a".repeat(64);
    for (const bad of [
      `sk_prod_${suffix}`,
      `sk_test_${suffix.slice(1)}`,
      `sk_test_${suffix}a`,
      `sk_test_${"a".repeat(63)}-`,
      `SK_TEST_${suffix}`,
      ` sk_test_${suffix}`,
      "",
    ]) {
      expect(apiKeyNetwork(bad), bad).toBeUndefined();
    }
  });

  it("hashes with SHA-256", () => {
    const key = generateApiKey("test");
    expect(sha256Hex(key)).toBe(createHash("sha256").update(key).digest("hex"));
    expect(sha256Hex(key)).toMatch(/^[0-9a-f]{64}$/);
  });
});
