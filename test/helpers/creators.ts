import { runResult } from "../../src/domains/generations/run.js";
import { resultIdOf } from "../../src/domains/generations/submit.js";
import { createFundedCaller, type TestApp } from "./app.js";

const MAX_FEE = 1000n;
const MAX_PASSES = 10;

/**
 * Earnings made the way creators make them: another account generates with the creator's style
 * passes, whose fees add up to `credits`, and charging the result pays each pass's royalty. With
 * ROYALTY_PLATFORM_SHARE_BPS=0 the creator earns exactly `credits`. Each result is run here, in
 * the test, so no worker is needed.
 */
export async function earnRoyalties(app: TestApp, creatorKey: string, credits: bigint) {
  let left = credits;
  while (left > 0n) {
    const fees: bigint[] = [];
    while (left > 0n && fees.length < MAX_PASSES) {
      const fee = left < MAX_FEE ? left : MAX_FEE;
      fees.push(fee);
      left -= fee;
    }
    const passIds: string[] = [];
    for (const fee of fees) {
      const pass = await app.request("POST", "/v1/passes", {
        token: creatorKey,
        json: { name: "Earner", stylePrompt: "ink wash", fee: Number(fee) },
      });
      if (pass.status !== 201) throw new Error(`pass not created: ${JSON.stringify(pass.body)}`);
      passIds.push(pass.body.id);
    }
    const total = fees.reduce((sum, fee) => sum + fee, 0n);
    const user = await createFundedCaller(app.ctx, total + 1_000n);
    const submitted = await app.request("POST", "/v1/generate", {
      token: user.key,
      json: { prompt: "a heron", models: ["z-image-turbo"], stylePassIds: passIds },
    });
    if (submitted.status !== 202) {
      throw new Error(`generation not accepted: ${JSON.stringify(submitted.body)}`);
    }
    await runResult(app.ctx, app.ctx.generations, resultIdOf(submitted.body.generationId, 0));
  }
}
