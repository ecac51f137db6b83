/// <reference lib="webworker" />
// The service worker: caches the app shell so voxbox opens offline (the chats and messages come
// from IndexedDB). Pages are network-first with the cached shell as the fallback; hashed assets
// are cache-first. The API is never cached here, and POST /share goes to the server.
declare const self: ServiceWorkerGlobalScope;

const CACHE = "voxbox-shell-v1";
const SHELL = "/";
const STATIC = ["/manifest.webmanifest", "/icons/icon-192.png", "/icons/icon-512.png"];

/** Cache the shell page and every /assets/ file it references. */
async function cacheShell(response: Response): Promise<void> {
  const cache = await caches.open(CACHE);
  const html = await response.clone().text();
  const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
  await cache.put(SHELL, response);
  await cache.addAll([...new Set([...assets, ...STATIC])]);
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    fetch(SHELL, { cache: "no-cache" })
      .then((r) => (r.ok ? cacheShell(r) : undefined))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
  if (req.mode === "navigate") {
    event.respondWith(
      fetch(req)
        .then((r) => {
          if (r.ok && r.headers.get("content-type")?.startsWith("text/html")) {
            event.waitUntil(cacheShell(r.clone()).catch(() => undefined));
          }
          return r;
        })
        .catch(async () => (await caches.match(SHELL)) ?? Response.error()),
    );
  } else if (url.pathname.startsWith("/assets/") || STATIC.includes(url.pathname)) {
    event.respondWith(
      caches.match(req).then(
        (hit) =>
          hit ??
          fetch(req).then(async (r) => {
            if (r.ok) await (await caches.open(CACHE)).put(req, r.clone());
            return r;
          }),
      ),
    );
  }
});

export {};
