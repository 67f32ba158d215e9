// stompbox service worker (issue 17, the installable app), served as /sw.js
// so that its scope is the whole site. It makes the chat open at once and
// show the rooms and history last seen while the server is unreachable:
//
//   - /static/ files are fingerprinted (?v=hash) and never change: cache first;
//   - the chat page and the API reads it starts from (/api/me, /api/users,
//     /api/rooms, a room's messages) go to the network first, and fall back
//     to the last copy only when the server cannot be reached;
//   - nothing else is touched: writes, uploads, downloads, STOMP and SockJS
//     go straight to the server. Same origin only; no push.
//
// The cache holds what the signed-in person saw, so it is dropped when they
// sign out (POST /api/logout) or the server sends the page to the login.
// Messages typed while offline are kept by pwa.js, not here; messages that
// arrived live are handed over by app.js (keep-history) and replace the
// room's cached history read.
"use strict";

const CACHE = "stompbox-v1"; // bump to drop every old copy on the next visit
const API_READS = /^\/api\/(me|users|rooms|rooms\/\d+\/messages|rooms\/\d+\/members)$/;
const PAGES = /^\/(embed\/room\/\d+)?$/;

self.addEventListener("install", () => self.skipWaiting());

self.addEventListener("activate", (e) => {
  e.waitUntil((async () => {
    for (const k of await caches.keys()) if (k !== CACHE) await caches.delete(k);
    await self.clients.claim();
  })());
});

// The page sends the URLs it loaded before this worker controlled it, so
// the very first visit already leaves a working offline copy. It also
// sends a room's newest messages after live ones arrived (keep-history),
// so that the offline copy shows what was on screen, not only the history
// of the last page load.
self.addEventListener("message", (e) => {
  const d = e.data;
  if (d && d.type === "keep-history") { e.waitUntil(keepHistory(d)); return; }
  if (!d || d.type !== "cache-shell" || !Array.isArray(d.urls)) return;
  e.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    for (const u of d.urls.slice(0, 50)) {
      const url = new URL(u, self.location.origin);
      if (url.origin !== self.location.origin || !cacheable(url)) continue;
      try {
        const res = await fetch(url.href, { credentials: "same-origin" });
        if (res.ok && !res.redirected) await cache.put(key(url), res);
      } catch (_) { /* offline now: the next visit fills it */ }
    }
  })());
});

// keepHistory replaces the cached copy of a room's history read with the
// messages the page holds (at most KEEP_MAX, the newest). Only a copy
// that exists is replaced: one this session fetched from the server, so
// nothing is written back after a sign-out dropped the cache.
const KEEP_MAX = 200;
const HISTORY = /^\/api\/rooms\/\d+\/messages$/;
async function keepHistory(d) {
  if (typeof d.url !== "string" || !Array.isArray(d.messages)) return;
  const url = new URL(d.url, self.location.origin);
  if (url.origin !== self.location.origin || !HISTORY.test(url.pathname)) return;
  if (!(await caches.has(CACHE))) return;
  const cache = await caches.open(CACHE);
  const k = key(url);
  if (!(await cache.match(k))) return;
  const body = JSON.stringify(d.messages.slice(-KEEP_MAX));
  await cache.put(k, new Response(body, { headers: { "Content-Type": "application/json; charset=utf-8" } }));
}

function cacheable(url) {
  return url.pathname.startsWith("/static/") || API_READS.test(url.pathname) || PAGES.test(url.pathname);
}

// key is what a response is stored under: a page without its query (the
// transport choice) and fragment; anything else with its query.
function key(url) {
  return PAGES.test(url.pathname) ? url.origin + url.pathname : url.href;
}

// SESSION_CHANGES are the requests after which the cache is another
// account's, or nobody's.
const SESSION_CHANGES = /^\/api\/(login|logout|register)$/;

self.addEventListener("fetch", (e) => {
  const req = e.request;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (req.method !== "GET") {
    // Signing out, or someone signing in or up in this browser: what is
    // cached belongs to the account before, so it goes.
    if (req.method === "POST" && SESSION_CHANGES.test(url.pathname)) e.waitUntil(caches.delete(CACHE));
    return;
  }
  if (url.pathname.startsWith("/static/")) e.respondWith(cacheFirst(req));
  else if ((req.mode === "navigate" && PAGES.test(url.pathname)) || API_READS.test(url.pathname)) e.respondWith(networkFirst(req, key(url)));
});

async function cacheFirst(req) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(req);
  if (hit) return hit;
  const res = await fetch(req);
  if (res.ok) cache.put(req, res.clone());
  return res;
}

async function networkFirst(req, k) {
  const cache = await caches.open(CACHE);
  let res;
  try {
    res = await fetch(req);
  } catch (err) {
    const hit = await cache.match(k);
    if (hit) return hit;
    throw err;
  }
  // Signed out elsewhere, or the session expired or was revoked: the chat
  // page redirects (a navigation sees an opaque redirect, since it follows
  // redirects itself) and the API answers 401. Nothing cached for that
  // account may be shown again.
  if (res.type === "opaqueredirect" || res.redirected || res.status === 401) await caches.delete(CACHE);
  else if (res.ok) await cache.put(k, res.clone());
  return res;
}
