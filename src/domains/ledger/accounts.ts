import type { Network } from "../../lib/network.js";

/**
 * Ledger account ids are deterministic, so no lookup is needed to name one: a user's are
 * `credits:test:acc_…` and `earnings:live:acc_…`; the system's are `revenue:test` and so on.
 * User accounts come into being on first use (ledger_ensure_account in SQL).
 */
export type UserAccountKind = "credits" | "earnings";
export type SystemAccountKind = "issuance" | "revenue" | "holds" | "royalties";

export const userLedgerAccount = (
  accountId: string,
  network: Network,
  kind: UserAccountKind = "credits",
) => `${kind}:${network}:${accountId}`;

export const systemLedgerAccount = (network: Network, kind: SystemAccountKind) =>
  `${kind}:${network}`;

/** The network part of a ledger account id (both forms carry it second). */
export const ledgerAccountNetwork = (id: string): string | undefined => id.split(":")[1];
