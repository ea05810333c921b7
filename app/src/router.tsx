import { type AnchorHTMLAttributes, useEffect, useState } from "react";

/**
 * A small path router under /app: the API serves index.html for every /app/… path, so links
 * are real URLs (shareable, reloadable) and navigation is history.pushState.
 */

export const BASE = "/app";
const listeners = new Set<() => void>();

export function navigate(to: string) {
  window.history.pushState(null, "", BASE + to);
  for (const l of listeners) l();
  window.scrollTo(0, 0);
}

const read = () => ({
  path: window.location.pathname.slice(BASE.length) || "/",
  search: new URLSearchParams(window.location.search),
});

/** The path below /app and its query, e.g. { path: "/models/gpt-image-2", search }. */
export function useLocation() {
  const [location, setLocation] = useState(read);
  useEffect(() => {
    const update = () => setLocation(read());
    listeners.add(update);
    window.addEventListener("popstate", update);
    return () => {
      listeners.delete(update);
      window.removeEventListener("popstate", update);
    };
  }, []);
  return location;
}

export function Link({ to, ...props }: { to: string } & AnchorHTMLAttributes<HTMLAnchorElement>) {
  return (
    <a
      {...props}
      href={BASE + to}
      onClick={(e) => {
        if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(to);
      }}
    />
  );
}
