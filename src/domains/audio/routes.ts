import { createHash } from "node:crypto";
import { type Request, type Response, Router } from "express";
import type { AppContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { keyScopeOf } from "../../http/auth.js";
import { mountOn } from "../../http/mount.js";
import { singleFileBody } from "../../http/multipart.js";
import { countOnlyWork, setRateLimitHeaders } from "../../http/rate-limit.js";
import type { RequestContext } from "../../http/request-context.js";
import { payOverHttp, respondPending } from "../../http/x402.js";
import { creditsToJson } from "../../lib/credits.js";
import type { Caller, NetworkScope } from "../accounts/caller.js";
import { requestHash } from "../idempotency/service.js";
import { audioContracts, transcriptionFields } from "./contract.js";
import { payForAudio } from "./paid.js";
import {
  type AudioCharge,
  type AudioIdempotency,
  type AudioPlan,
  createSpeech,
  createTranscription,
  type HoldSource,
  planSpeech,
  planTranscription,
} from "./service.js";

/** OpenAI's own limit on a transcription's file. */
export const MAX_TRANSCRIPTION_BYTES = 25 * 1024 * 1024;

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** The request's Idempotency-Key, checked as every route checks it, with the hash of `asked`. */
function idempotencyOf(req: Request, asked: unknown): AudioIdempotency | undefined {
  const key = req.get("idempotency-key");
  if (key === undefined) return undefined;
  if (!KEY_PATTERN.test(key)) {
    throw new AppError(
      "invalid_request",
      "Idempotency-Key must be 1–255 visible ASCII characters.",
    );
  }
  return { key, hash: requestHash(req.method, req.path, asked) };
}

/**
 * Where the call's hold comes from: with an API key, the key's account (an Idempotency-Key
 * names the hold); without one, an x402 payment of the exact quote, which holds it (its receipt
 * goes out in PAYMENT-RESPONSE). Undefined
 * when the payment is broadcast but not confirmed: the 202 saying so has been sent.
 */
async function holdSource(
  ctx: RequestContext,
  req: Request,
  res: Response,
  caller: Caller | undefined,
  plan: Pick<AudioPlan<unknown>, "kind" | "model" | "cost" | "serves" | "routing">,
  what: string,
  asked: unknown,
): Promise<{ scope: NetworkScope; source: HoldSource } | undefined> {
  if (caller)
    return { scope: keyScopeOf(caller), source: { idempotency: idempotencyOf(req, asked) } };
  const outcome = await payOverHttp(ctx, req, res, (paid) =>
    payForAudio(ctx, paid, plan, what, (decision) => {
      setRateLimitHeaders(res, decision);
      countOnlyWork(ctx, res, decision);
    }),
  );
  if (outcome.status === "pending") {
    respondPending(res, outcome.payment);
    return undefined;
  }
  return {
    scope: outcome.result.scope,
    source: { paidHoldId: outcome.result.holdId },
  };
}

/** What was charged and who served it, on the answer (JSON or not). */
function chargeHeaders(res: Response, charge: AudioCharge) {
  res.set({
    "X-Credits-Charged": String(creditsToJson(charge.charged)),
    "X-Upstream": charge.upstream ?? "",
    "X-Failover": String(charge.failover),
    ...(charge.replayed && { "Idempotent-Replayed": "true" }),
  });
}

export function audioRoutes(ctx: AppContext): Router {
  const router = Router();
  const mount = mountOn(router, ctx);

  mount(audioContracts.createSpeech, async ({ ctx, caller, body, req, res }) => {
    const plan = planSpeech(body);
    const held = await holdSource(ctx, req, res, caller, plan, "speech", body);
    if (!held) return undefined;
    const speech = await createSpeech(ctx, held.scope, plan, held.source);
    chargeHeaders(res, speech.charge);
    res.status(200).type(speech.contentType).send(speech.audio);
    return undefined;
  });

  // The multipart body is read by multer; its text fields are parsed here, the file checked
  // by its bytes (the service reads its length from its header).
  mount(
    audioContracts.createTranscription,
    async ({ ctx, caller, req, res }) => {
      const fields = transcriptionFields.parse(req.body ?? {});
      const files = (req.files ?? []) as Express.Multer.File[];
      const file = files.find((f) => f.fieldname === "file");
      if (!file) {
        throw new AppError("invalid_request", "No file: send one file field named `file`.", {
          field: "file",
        });
      }
      const asked = {
        ...fields,
        file: createHash("sha256").update(file.buffer).digest("hex"),
      };
      const plan = planTranscription({
        model: fields.model,
        file: file.buffer,
        filename: file.originalname || "audio",
        contentType: file.mimetype || "application/octet-stream",
        language: fields.language,
        prompt: fields.prompt,
        routing: fields.routing,
      });
      const held = await holdSource(ctx, req, res, caller, plan, "a transcription", asked);
      if (!held) return undefined;
      const done = await createTranscription(ctx, held.scope, plan, held.source);
      chargeHeaders(res, done.charge);
      if (fields.response_format === "text") {
        res.status(200).type("text/plain").send(done.text);
        return undefined;
      }
      return {
        status: 200,
        body: {
          text: done.text,
          usage: {
            type: "duration",
            seconds: done.seconds,
            cost: creditsToJson(done.charge.charged),
          },
          routing: {
            upstream: done.charge.upstream,
            failover: done.charge.failover,
            ...(fields.routing && { preferences: fields.routing }),
          },
        },
      };
    },
    {
      parseBody: false,
      readBody: singleFileBody({
        maxBytes: MAX_TRANSCRIPTION_BYTES,
        sent: "the audio",
        file: "The file",
      }),
    },
  );

  return router;
}
