// Builds the PWA into the Python package (src/voxbox/web/dist), which serves it at /.
// Two entries: the shell (index.html) and the service worker, emitted as /sw.js (no hash:
// browsers look for it at a fixed URL).
import { defineConfig } from "vitest/config";

export default defineConfig({
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "../src/voxbox/web/dist",
    emptyOutDir: true,
    target: "es2022",
    rollupOptions: {
      input: { main: "index.html", sw: "src/sw.ts" },
      output: {
        entryFileNames: (chunk) => (chunk.name === "sw" ? "sw.js" : "assets/[name]-[hash].js"),
      },
    },
  },
  test: { environment: "node", include: ["test/**/*.test.ts"] },
});
