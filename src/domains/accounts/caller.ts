import type { Network } from "../../lib/network.js";

/** Who is making a request, as established by authentication. */
export type Caller =
  | { kind: "api_key"; accountId: string; network: Network; apiKeyId: string }
  | { kind: "session"; accountId: string; sessionId: string }
  /** A paid (x402) caller's token for reading one generation. */
  | { kind: "generation_token"; accountId: string; network: Network; generationId: string };

/**
 * What a caller may see and act on: its own account, and with an API key only that key's
 * network. A wallet session (or an operator) sees both networks of the account.
 */
export interface Scope {
  accountId: string;
  network?: Network;
  /** The API key acting, when one is: the holds it places count against its spend limits. */
  apiKeyId?: string;
}

export const scopeOf = (caller: Caller): Scope =>
  caller.kind === "session"
    ? { accountId: caller.accountId }
    : caller.kind === "api_key"
      ? { accountId: caller.accountId, network: caller.network, apiKeyId: caller.apiKeyId }
      : { accountId: caller.accountId, network: caller.network };

/** A scope that names its network: what every service that moves or reads credits acts in. */
export interface NetworkScope extends Scope {
  network: Network;
}
