import { useState } from "react";
import { ApiError, api } from "../api";
import { networkOfKey, useAuth } from "../auth";
import { NETWORKS } from "../networks";
import type { Account, ApiKey, Network } from "../types";
import { ErrorNote } from "../ui/states";
import { connectWallet, signInWithWallet } from "../wallet";
import { KeyList } from "./Settings";

const BROWSER_KEY_NAME = "Creator Suite (browser)";

export function SignInScreen() {
  const { signIn } = useAuth();
  const [network, setNetwork] = useState<Network>("test");
  const [pasted, setPasted] = useState("");
  const [busy, setBusy] = useState<"wallet" | "key" | null>(null);
  const [error, setError] = useState<unknown>(null);
  // A signed-in wallet whose account already has 3 keys: it must revoke one first.
  const [fullSession, setFullSession] = useState<string | null>(null);

  async function withWallet() {
    setBusy("wallet");
    setError(null);
    try {
      const wallet = await connectWallet();
      const session = await signInWithWallet(wallet, network);
      // A session only manages keys: make one for this browser to call the rest of the API.
      try {
        const key = await api<ApiKey>("/v1/api-keys", {
          token: session.sessionToken,
          json: { name: BROWSER_KEY_NAME, network },
        });
        if (!key.key) throw new Error("The API returned no key secret.");
        signIn({
          apiKey: key.key,
          network,
          sessionToken: session.sessionToken,
          walletAddress: wallet.address,
        });
      } catch (err) {
        if (err instanceof ApiError && err.code === "api_key_limit_reached") {
          setFullSession(session.sessionToken);
        }
        throw err;
      }
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  }

  async function withKey() {
    setBusy("key");
    setError(null);
    try {
      const key = pasted.trim();
      const keyNetwork = networkOfKey(key);
      if (!keyNetwork) throw new Error("An API key starts with sk_test_ or sk_live_.");
      await api<Account>("/v1/account", { token: key });
      signIn({ apiKey: key, network: keyNetwork });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  }

  return (
    <section aria-labelledby="signin-title" className="signin">
      <h1 id="signin-title">Sign in</h1>
      <div className="cards">
        <form
          className="card"
          onSubmit={(e) => {
            e.preventDefault();
            void withWallet();
          }}
        >
          <h2>With your wallet</h2>
          <p>Sign a message (EIP-4361). Nothing is sent on chain and nothing is paid.</p>
          <fieldset>
            <legend>Network</legend>
            {(["test", "live"] as const).map((n) => (
              <label key={n} className="inline">
                <input
                  type="radio"
                  name="network"
                  value={n}
                  checked={network === n}
                  onChange={() => setNetwork(n)}
                />
                {NETWORKS[n].label}: {NETWORKS[n].chainName} ({NETWORKS[n].note})
              </label>
            ))}
          </fieldset>
          <button type="submit" disabled={busy !== null}>
            {busy === "wallet" ? "Waiting for the wallet…" : "Sign in with wallet"}
          </button>
        </form>
        <form
          className="card"
          onSubmit={(e) => {
            e.preventDefault();
            void withKey();
          }}
        >
          <h2>With an API key</h2>
          <label>
            API key
            <input
              type="password"
              autoComplete="off"
              placeholder="sk_test_… or sk_live_…"
              value={pasted}
              onChange={(e) => setPasted(e.target.value)}
              required
            />
          </label>
          {networkOfKey(pasted.trim()) && (
            <p className="hint">
              This is a {networkOfKey(pasted.trim())} key:{" "}
              {NETWORKS[networkOfKey(pasted.trim()) ?? "test"].chainName},{" "}
              {NETWORKS[networkOfKey(pasted.trim()) ?? "test"].note}.
            </p>
          )}
          <button type="submit" disabled={busy !== null}>
            {busy === "key" ? "Checking…" : "Use this key"}
          </button>
        </form>
      </div>
      {error !== null && <ErrorNote error={error} />}
      {fullSession && (
        <div>
          <p>Your account already has 3 active keys. Revoke one, then sign in again.</p>
          <KeyList token={fullSession} />
        </div>
      )}
    </section>
  );
}
