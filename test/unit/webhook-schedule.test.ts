import { describe, expect, it } from "vitest";
import {
  MAX_WEBHOOK_ATTEMPTS,
  retryDelayMs,
  signWebhook,
} from "../../src/domains/webhooks/service.js";

describe("webhook retries", () => {
  it("grow 4× per attempt, cap at 12 hours, and span more than a day at the default base", () => {
    const delays = Array.from({ length: MAX_WEBHOOK_ATTEMPTS - 1 }, (_, i) =>
      retryDelayMs(5_000, i + 1),
    );
    for (const [i, d] of delays.entries()) {
      const nominal = Math.min(5_000 * 4 ** i, 12 * 3600_000);
      expect(d).toBeGreaterThanOrEqual(nominal * 0.9);
      expect(d).toBeLessThanOrEqual(nominal * 1.1);
    }
    const total = delays.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(24 * 3600_000);
  });

  it("signs id.timestamp.body with the base64 key of each secret", () => {
    // The example from the Standard Webhooks specification.
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const body = '{"test": 2432232314}';
    expect(signWebhook([secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)).toBe(
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    );
  });
});
