// Builds the PWA into the Python package (src/voxbox/web/dist), which serves it at /.
// Two entries: the shell (index.html) and the service worker, emitted as /sw.js (no hash:
// browsers look for it at a fixed URL).
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { defineConfig, type Plugin } from "vitest/config";

const OUT = "../src/voxbox/web/dist";

/** A NAME.gz beside every script and style sheet, which the server sends to gzip clients. */
function gzipAssets(): Plugin {
  return {
    name: "voxbox-gzip-assets",
    apply: "build",
    closeBundle() {
      const dir = join(OUT, "assets");
      for (const name of readdirSync(dir)) {
        if (/\.(js|css)$/.test(name)) {
          writeFileSync(join(dir, `${name}.gz`), gzipSync(readFileSync(join(dir, name)), { level: 9 }));
        }
      }
    },
  };
}

export default defineConfig({
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  plugins: [gzipAssets()],
  build: {
    outDir: OUT,
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
