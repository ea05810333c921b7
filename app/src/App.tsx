import { useQueryClient } from "@tanstack/react-query";
import { useEffect } from "react";
import { ApiError } from "./api";
import { useAuth } from "./auth";
import { NETWORKS } from "./networks";
import { Link, navigate, useLocation } from "./router";
import { ChatScreen } from "./screens/Chat";
import { CreatorsScreen } from "./screens/Creators";
import { CreditsScreen } from "./screens/Credits";
import { GalleryScreen } from "./screens/Gallery";
import { ModelScreen } from "./screens/Model";
import { PlaygroundScreen } from "./screens/Playground";
import { PricingScreen } from "./screens/Pricing";
import { SettingsScreen } from "./screens/Settings";
import { SignInScreen } from "./screens/SignIn";
import { StudioScreen } from "./screens/Studio";

const SIGNED_IN_NAV = [
  ["/playground", "Playground"],
  ["/chat", "Chat"],
  ["/gallery", "Gallery"],
  ["/credits", "Credits"],
  ["/settings", "Settings"],
  ["/creators", "Creators"],
  ["/studio", "Studio"],
  ["/pricing", "Pricing"],
] as const;

/** Always on screen: which world the caller acts in, and what that costs. */
function NetworkBanner() {
  const { auth } = useAuth();
  if (!auth) return null;
  const n = NETWORKS[auth.network];
  return (
    <output className={`network network-${auth.network}`} data-testid="network">
      <strong>{n.label}</strong> · {n.chainName} · {n.note}
    </output>
  );
}

export function App() {
  const { auth, signOut } = useAuth();
  const { path } = useLocation();
  const queryClient = useQueryClient();
  const publicPath = path === "/pricing" || path.startsWith("/models/") || path === "/signin";

  // A revoked key or an expired session answers 401 from then on: sign in again.
  useEffect(
    () =>
      queryClient.getQueryCache().subscribe((event) => {
        const error =
          event.type === "updated" && event.action.type === "error" && event.action.error;
        if (error instanceof ApiError && error.status === 401 && auth) {
          signOut();
          queryClient.clear();
        }
      }),
    [queryClient, auth, signOut],
  );

  useEffect(() => {
    if (!auth && !publicPath) navigate("/signin");
    if (auth && (path === "/" || path === "/signin")) navigate("/playground");
  }, [auth, path, publicPath]);

  let screen = null;
  if (path === "/pricing") screen = <PricingScreen />;
  else if (path.startsWith("/models/"))
    screen = <ModelScreen id={decodeURIComponent(path.slice("/models/".length))} />;
  else if (!auth) screen = <SignInScreen />;
  else if (path === "/chat") screen = <ChatScreen />;
  else if (path === "/gallery") screen = <GalleryScreen />;
  else if (path === "/credits") screen = <CreditsScreen />;
  else if (path === "/settings") screen = <SettingsScreen />;
  else if (path === "/creators") screen = <CreatorsScreen />;
  else if (path === "/studio") screen = <StudioScreen />;
  else screen = <PlaygroundScreen />;

  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <Link to={auth ? "/playground" : "/pricing"} className="brand">
          Polyforge
        </Link>
        <nav aria-label="Main">
          {auth ? (
            SIGNED_IN_NAV.map(([to, label]) => (
              <Link key={to} to={to} aria-current={path === to ? "page" : undefined}>
                {label}
              </Link>
            ))
          ) : (
            <>
              <Link to="/pricing" aria-current={path === "/pricing" ? "page" : undefined}>
                Pricing
              </Link>
              <Link to="/signin" aria-current={path === "/signin" ? "page" : undefined}>
                Sign in
              </Link>
            </>
          )}
          {auth && (
            <button
              type="button"
              className="link"
              onClick={() => {
                signOut();
                queryClient.clear();
              }}
            >
              Sign out
            </button>
          )}
        </nav>
        <NetworkBanner />
      </header>
      <main id="main">{screen}</main>
    </>
  );
}
