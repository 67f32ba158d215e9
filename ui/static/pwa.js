// stompbox as an installable app (issue 17): registers the service worker
// (/sw.js) and keeps the outbox, the messages typed while the server cannot
// be reached. app.js puts every send in the outbox with an idempotency key
// and takes it out when the server's RECEIPT (or refusal) comes; after a
// reconnect it sends what is left again, with the same keys, so the server
// stores each message once however often the connection dropped.
//
// The outbox lives in localStorage, per account, so it survives a reload or
// a closed tab. Texts are put on the page with textContent only.
"use strict";
window.StompboxOutbox = (function () {
  const KEY_PREFIX = "stompbox_outbox_"; // + the account id: a shared browser keeps accounts apart
  const MAX_ITEMS = 200;                 // a day offline in a busy room; older ones are dropped first
  const FLUSH_EVERY_MS = 100;            // 10 sends a second: half the server's default -send-rate, so a full outbox is never cut off as a flood
  const SHOW_AFTER_MS = 1500;            // a send confirmed within this never shows as waiting (while connected)

  // The service worker needs a secure context: HTTPS, or localhost. On a
  // plain-HTTP intranet address the page simply works online only.
  function registerWorker() {
    if (!("serviceWorker" in navigator) || !window.isSecureContext) return;
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).then(() => navigator.serviceWorker.ready).then((reg) => {
      // What this page loaded before the worker controlled it.
      const urls = [location.pathname, "/api/me", "/api/users", "/api/rooms"];
      for (const n of document.querySelectorAll('script[src], link[rel="stylesheet"], link[rel="icon"], link[rel="manifest"]')) {
        urls.push(n.getAttribute("src") || n.getAttribute("href"));
      }
      if (reg.active) reg.active.postMessage({ type: "cache-shell", urls: urls });
    }).catch(() => { /* no offline copy; everything else works */ });
  }

  // newKey is a random idempotency key (crypto.randomUUID exists only in
  // secure contexts; getRandomValues everywhere).
  function newKey() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  // init returns the outbox of the signed-in account: add(item) keeps
  // {key, roomId, text, attachments}, done(key) drops it, pending() lists
  // what is left, oldest first, and flush(publish) sends it. A status line
  // under the composer says how many wait: while opts.connected() says the
  // connection is up, only those waiting longer than SHOW_AFTER_MS, so a
  // send the server confirms at once never flashes it. opts.changed(items)
  // is called after every change (and when an item has waited long
  // enough to show), so the page can show waiting messages in their room.
  // visible(item) says whether an item should show now.
  function init(opts) {
    const connected = opts.connected || (() => false);
    const changed = opts.changed || (() => {});
    const visible = (x) => !connected() || Date.now() - (x.at || 0) >= SHOW_AFTER_MS;
    let showTimer = 0;
    const storeKey = KEY_PREFIX + opts.userId;
    const line = document.createElement("p");
    line.className = "outbox hint";
    line.setAttribute("role", "status");
    line.dataset.testid = "outbox";
    line.hidden = true;
    const form = document.querySelector('[data-testid="composer-form"]');
    if (form) form.append(line);

    function load() {
      try {
        const v = JSON.parse(localStorage.getItem(storeKey) || "[]");
        return Array.isArray(v) ? v.filter((x) => x && typeof x.key === "string" && typeof x.roomId === "number") : [];
      } catch (_) { return []; }
    }
    function save(items) {
      try { localStorage.setItem(storeKey, JSON.stringify(items.slice(-MAX_ITEMS))); } catch (_) { /* storage full or off */ }
      show(items);
    }
    function show(items, initial) {
      const n = items.filter(visible).length;
      line.hidden = n === 0;
      line.textContent = n ? opts.t("outbox.waiting", { n: n }) : "";
      clearTimeout(showTimer);
      if (n < items.length) showTimer = setTimeout(() => show(load()), SHOW_AFTER_MS);
      if (!initial) changed(items);
    }
    show(load(), true);
    let flushGen = 0; // a newer flush (after a reconnect) stops an older one
    return {
      newKey: newKey,
      add: (item) => { const items = load(); if (!items.some((x) => x.key === item.key)) items.push(Object.assign({ at: Date.now() }, item)); save(items); },
      visible: visible,
      refresh: () => show(load()), // the connection changed: what shows may too
      done: (key) => { const items = load(); const left = items.filter((x) => x.key !== key); if (left.length !== items.length) save(left); },
      pending: () => load(),
      // flush sends what waits, oldest first, paced; it stops when publish
      // fails (the connection is gone) or a newer flush starts.
      flush: (publish) => {
        const gen = ++flushGen;
        const items = load();
        let i = 0;
        const step = () => {
          if (gen !== flushGen || i >= items.length || !publish(items[i++])) return;
          setTimeout(step, FLUSH_EVERY_MS);
        };
        step();
      },
    };
  }

  registerWorker();
  return Object.freeze({ init: init });
})();
