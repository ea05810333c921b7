import { encodePaymentRequiredHeader, encodePaymentResponseHeader } from "@x402/core/http";
import type { Request, Response } from "express";
import type { AppContext } from "../context.js";
import {
  type PaidGeneration,
  type PaidGenerationOptions,
  type PaidGenerations,
  submitPaidGenerations,
} from "../domains/generations/paid.js";
import type { GenerateRequest } from "../domains/generations/request.js";
import {
  type PaidRequest,
  type PaymentOutcome,
  paymentRequiredOf,
  receiptJson,
} from "../domains/payments/accept.js";
import type { Payment } from "../domains/payments/service.js";
import { AppError } from "../errors.js";
import { countOnlyWork, setRateLimitHeaders } from "./rate-limit.js";

/**
 * x402 over HTTP: the payment comes in the PAYMENT-SIGNATURE header; a refusal (402) carries
 * the offers in PAYMENT-REQUIRED, and a settled payment's receipt goes out in PAYMENT-RESPONSE.
 * The payment verbs (domains/payments/accept.ts) take and return plain values; this is the
 * only place that knows those headers.
 */
const PAYMENT_SIGNATURE = "payment-signature";

/** The request's side of a payment, its receipt written on `res` once settled. */
function paidRequestOf(ctx: AppContext, req: Request, res: Response): PaidRequest {
  return {
    paymentHeader: req.get(PAYMENT_SIGNATURE),
    resourceUrl: `${ctx.config.http.publicUrl}${req.originalUrl}`,
    hasApiKey: req.caller !== undefined,
    // Set before the work starts: an answer that fails after settlement still says it settled.
    onSettled: (settlement) => res.set("PAYMENT-RESPONSE", encodePaymentResponseHeader(settlement)),
  };
}

/** A refusal with its offers encoded in PAYMENT-REQUIRED; any other error as it is. */
function withPaymentRequiredHeader(err: unknown): unknown {
  const required = paymentRequiredOf(err);
  if (!required || !(err instanceof AppError)) return err;
  return new AppError(err.code, err.message, err.details, {
    cause: err.cause,
    headers: { ...err.headers, "PAYMENT-REQUIRED": encodePaymentRequiredHeader(required) },
  });
}

/** Runs a payment verb for this request, in x402's HTTP headers. */
export async function payOverHttp<T>(
  ctx: AppContext,
  req: Request,
  res: Response,
  pay: (paid: PaidRequest) => Promise<T>,
): Promise<T> {
  try {
    return await pay(paidRequestOf(ctx, req, res));
  } catch (err) {
    throw withPaymentRequiredHeader(err);
  }
}

/** The answer to a request whose payment was broadcast but not confirmed in time. */
export function respondPending(res: Response, payment: Payment) {
  res.status(202).json({
    status: "payment_pending",
    payment: receiptJson(payment),
    message:
      "The payment was broadcast but is not confirmed yet. Once the chain confirms it, its credits are added to the paying wallet's account (GET /v1/payments with a key for that wallet shows it); do not pay again.",
  });
}

/**
 * Generations paid per call over HTTP: the wallet's rate-limit count goes out in RateLimit-*
 * headers and is given back if the answer is an error (see countOnlyWork).
 */
export function payForGenerations(
  ctx: AppContext,
  req: Request,
  res: Response,
  requests: GenerateRequest[],
  bucket: PaidGenerationOptions["bucket"],
  options: Pick<PaidGenerationOptions, "asBatch" | "runInline"> = {},
): Promise<PaymentOutcome<PaidGenerations>> {
  return payOverHttp(ctx, req, res, (paid) =>
    submitPaidGenerations(ctx, paid, requests, {
      ...options,
      bucket,
      onRateLimitCounted: (decision) => {
        setRateLimitHeaders(res, decision);
        countOnlyWork(ctx, res, decision);
      },
    }),
  );
}

/**
 * One paid generation, for the doors that make one: its generation and the fields every paid
 * answer adds (the access token and the receipt). Undefined when the settlement is pending:
 * the 202 that says so has been sent.
 */
export async function payForGeneration(
  ctx: AppContext,
  req: Request,
  res: Response,
  request: GenerateRequest,
): Promise<{ generation: PaidGeneration; paid: Record<string, unknown> } | undefined> {
  const outcome = await payForGenerations(ctx, req, res, [request], "generate");
  if (outcome.status === "pending") {
    respondPending(res, outcome.payment);
    return undefined;
  }
  const [generation] = outcome.result.generations;
  if (!generation) throw new Error("a paid generation was not created");
  return {
    generation,
    paid: { accessToken: generation.accessToken, payment: receiptJson(outcome.payment) },
  };
}
