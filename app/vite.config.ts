import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

/**
 * The Creator Suite is served by the API itself at /app, so every asset URL starts there and
 * the build is self-contained: no CDN, nothing fetched at run time.
 */
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/app/",
  // Vite's own JSX transform (oxc) is enough for a production build: no React plugin, since the
  // app is built once at install and never served by a dev server with hot reload.
  oxc: { jsx: { runtime: "automatic" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
    rolldownOptions: {
      onwarn(warning, warn) {
        // React Query marks its modules "use client" for server components; a SPA has none.
        if (warning.code === "MODULE_LEVEL_DIRECTIVE") return;
        warn(warning);
      },
    },
  },
});
