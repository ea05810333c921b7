/**
 * Why an x402 payment was refused: the `reason` of a payment_required error. Ours are these; a
 * facilitator's own refusal (verify's invalidReason, settle's errorReason, such as
 * invalid_exact_evm_insufficient_balance) passes through as it gave it, so the reason stays an
 * open string: a code starting with invalid_ says the authorization was refused and no money
 * moved (that code is also what the failed payment keeps in `error`).
 */
export const PAYMENT_REFUSAL_REASONS = [
  /** No PAYMENT-SIGNATURE header was sent. */
  "payment_required",
  /** The header is not an x402 payment, or its payer is not its authorization's signer. */
  "invalid_payload",
  /** The payment matches none of the offers (asset, amount, recipient or network differ). */
  "no_matching_requirements",
  /** The authorization is valid for longer than we asked. */
  "invalid_valid_before",
  /** The facilitator refused it without saying why. */
  "invalid_payment",
  /** This authorization was already settled for an earlier request. */
  "authorization_already_used",
] as const;

/**
 * What a payment left undecided (pending) or failed after its claim keeps in `error`, besides
 * a facilitator's own code; never answered as a refusal.
 */
export const PAYMENT_RECORD_REASONS = [
  /** Settlement failed and the facilitator gave no reason: the chain decides (pending). */
  "settlement_failed",
  /** Settlement threw (a timeout, a facilitator that stopped answering): the chain decides. */
  "settlement_error",
  /** Reconciliation: the authorization's nonce was used by another transfer. */
  "authorization_used_elsewhere",
  /** Reconciliation: never settled before the authorization expired. */
  "authorization_expired",
] as const;

export type KnownPaymentReason =
  | (typeof PAYMENT_REFUSAL_REASONS)[number]
  | (typeof PAYMENT_RECORD_REASONS)[number];
/** A known reason, or a facilitator's own code. */
export type PaymentReason = KnownPaymentReason | (string & {});
