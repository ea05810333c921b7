import { createContext, type ReactNode, useCallback, useContext, useMemo, useState } from "react";
import type { Network } from "./types";

/**
 * Who the app acts as. Every screen but key management needs an API key (a wallet session may
 * only manage keys), so a wallet sign-in ends with a key made for this browser. Kept in
 * localStorage so a reload stays signed in; "Sign out" forgets it.
 */
export interface Auth {
  apiKey: string;
  network: Network;
  /** Set after a wallet sign-in: lets the keys screen manage both networks' keys. */
  sessionToken?: string;
  walletAddress?: string;
}

const STORAGE_KEY = "polyforge.auth";

export const networkOfKey = (key: string): Network | null =>
  key.startsWith("sk_test_") ? "test" : key.startsWith("sk_live_") ? "live" : null;

function load(): Auth | null {
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    const parsed = raw ? (JSON.parse(raw) as Auth) : null;
    return parsed && networkOfKey(parsed.apiKey) ? parsed : null;
  } catch {
    return null;
  }
}

interface AuthState {
  auth: Auth | null;
  signIn(auth: Auth): void;
  signOut(): void;
}

const AuthContext = createContext<AuthState | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [auth, setAuth] = useState<Auth | null>(load);
  const signIn = useCallback((next: Auth) => {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(next));
    setAuth(next);
  }, []);
  const signOut = useCallback(() => {
    localStorage.removeItem(STORAGE_KEY);
    setAuth(null);
  }, []);
  const value = useMemo(() => ({ auth, signIn, signOut }), [auth, signIn, signOut]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthState {
  const state = useContext(AuthContext);
  if (!state) throw new Error("useAuth outside AuthProvider");
  return state;
}

/** The signed-in caller, for screens that are only shown once signed in. */
export function useSignedIn(): Auth {
  const { auth } = useAuth();
  if (!auth) throw new Error("not signed in");
  return auth;
}
