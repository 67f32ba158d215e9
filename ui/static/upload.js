// stompbox files and pictures (issue 17): upload by button, drag and drop or
// paste, several at once, each with a progress bar and a cancel; then the
// composer's Send carries the finished uploads' ids with the message. Also
// renders the attachments of a message (thumbnails that open full size,
// cards for other files). Like app.js it builds every node with DOM methods
// and textContent: a file name can never become markup.
//
// app.js calls StompboxUpload.init once on the chat and embed pages and
// StompboxUpload.render for each message that carries attachments.
"use strict";
window.StompboxUpload = (function () {
  const DEFAULT_MAX_UPLOAD = 50 * 1024 * 1024; // the server's -max-upload default, when the page says nothing
  const THUMB_BOX_W = 320;                      // CSS pixels a thumbnail may take in the message list
  const THUMB_BOX_H = 240;
  const PASTE_NAME = "screenshot.png";          // a pasted picture without a name of its own

  const byTestId = (id, root) => (root || document).querySelector('[data-testid="' + id + '"]');

  function node(tag, props, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") n.className = v;
      else if (k === "text") n.textContent = v;
      else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role" || k === "href" || k === "title") n.setAttribute(k, v);
      else n[k] = v;
    }
    for (const c of children) if (c !== null && c !== undefined) n.append(c);
    return n;
  }

  // size formats a byte count for people: 1 decimal below 10 of a unit.
  function size(n) {
    const units = ["B", "KB", "MB", "GB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 || n >= 10 ? Math.round(n) : Math.round(n * 10) / 10) + " " + units[i];
  }

  // fit scales w×h into the thumbnail box, so the list reserves the space
  // before the picture arrives and does not jump.
  function fit(w, h) {
    if (!w || !h) return { w: THUMB_BOX_W, h: THUMB_BOX_H };
    const s = Math.min(1, THUMB_BOX_W / w, THUMB_BOX_H / h);
    return { w: Math.max(1, Math.round(w * s)), h: Math.max(1, Math.round(h * s)) };
  }

  let t = (k) => k;        // app.js's translator, set by init
  let lightbox = null;

  function openLightbox(a) {
    if (!lightbox) {
      const img = node("img", { "data-testid": "lightbox-img", alt: "" });
      const link = node("a", { class: "lightbox-download", "data-testid": "lightbox-download", text: t("file.download") });
      const close = node("button", { type: "button", class: "secondary", "data-testid": "lightbox-close", text: t("lightbox.close") });
      lightbox = node("dialog", { class: "lightbox", "data-testid": "lightbox" }, img, node("div", { class: "lightbox-bar" }, link, close));
      close.addEventListener("click", () => lightbox.close());
      lightbox.addEventListener("click", (e) => { if (e.target === lightbox) lightbox.close(); });
      document.body.append(lightbox);
    }
    const img = byTestId("lightbox-img", lightbox);
    img.alt = a.name;
    img.src = a.url;
    const link = byTestId("lightbox-download", lightbox);
    link.href = a.url;
    link.download = a.name;
    lightbox.showModal();
  }

  // fileIcon is a page with a folded corner, drawn as SVG (an emoji may
  // have no glyph in the fonts of an offline machine).
  function fileIcon() {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "28");
    svg.setAttribute("height", "28");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("class", "file-icon");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M6 2.5h8l5 5v14H6z M14 2.5v5h5");
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", "1.6");
    path.setAttribute("stroke-linejoin", "round");
    svg.append(path);
    return svg;
  }

  // render returns the attachments of one message as a node.
  function render(list) {
    const box = node("div", { class: "attachments", "data-testid": "attachments" });
    for (const a of list) {
      if (!a || typeof a.url !== "string" || !a.url.startsWith("/api/files/")) continue; // only our own downloads
      if (a.thumbUrl && a.thumbUrl.startsWith("/api/files/")) {
        const d = fit(a.width, a.height);
        const img = node("img", { src: a.thumbUrl, alt: a.name, width: d.w, height: d.h, loading: "lazy", decoding: "async" });
        const b = node("button", { type: "button", class: "thumb", "data-testid": "attachment-thumb", title: t("file.open") + ": " + a.name }, img);
        b.addEventListener("click", () => openLightbox(a));
        box.append(b);
      } else {
        box.append(node("a", { class: "file-card", href: a.url, download: a.name || "", "data-testid": "attachment-file", title: t("file.download") + ": " + a.name },
          fileIcon(),
          node("span", { class: "file-name", "data-testid": "attachment-name", text: a.name }),
          node("span", { class: "file-meta", text: size(a.size || 0) + " · " + (a.type || "") })));
      }
    }
    return box;
  }

  // init wires the composer's upload controls. opts: {room() → open room id,
  // t, toast, maxUpload (bytes)}. It returns what app.js needs for sending:
  // ready() the finished uploads' ids, busy() whether any is still running,
  // clear() after a send, and reset(roomId) when another room opens.
  function init(opts) {
    t = opts.t;
    const form = byTestId("composer-form");
    const tray = byTestId("uploads");
    const input = byTestId("file-input");
    const attach = byTestId("attach");
    const room = byTestId("room");
    if (!form || !tray || !input || !attach) return null;
    const maxUpload = opts.maxUpload || DEFAULT_MAX_UPLOAD;
    let items = [];   // {li, xhr, file, result, roomId}
    let trayRoom = 0; // the room the tray's uploads belong to

    function refresh() {
      tray.hidden = items.length === 0;
    }
    function drop(item) {
      if (item.xhr && !item.result) item.xhr.abort();
      // Taken back before sending: the server forgets it (and its quota) now, not in a day.
      if (item.result) fetch("/api/files/" + item.result.id, { method: "DELETE" }).catch(() => {});
      item.li.remove();
      items = items.filter((x) => x !== item);
      refresh();
    }
    function start(file) {
      const roomId = opts.room();
      if (!roomId) return;
      if (trayRoom !== roomId) reset(roomId);
      const name = file.name || PASTE_NAME;
      if (file.size > maxUpload) {
        opts.toast(t("upload.tooLarge", { name: name, n: Math.floor(maxUpload / 1048576) }));
        return;
      }
      if (file.size === 0) {
        opts.toast(t("upload.empty", { name: name }));
        return;
      }
      const bar = node("progress", { max: 100, value: 0, "data-testid": "upload-progress", "data-percent": "0" });
      const cancel = node("button", { type: "button", class: "link-btn", "data-testid": "upload-cancel", text: t("upload.cancel") });
      const status = node("span", { class: "upload-status", "data-testid": "upload-status", text: size(file.size) });
      const li = node("li", { class: "upload", "data-testid": "upload", "data-state": "uploading" },
        node("span", { class: "upload-name", "data-testid": "upload-name", text: name }), bar, status, cancel);
      const item = { li: li, file: file, result: null, xhr: new XMLHttpRequest() };
      cancel.addEventListener("click", () => drop(item));
      items.push(item);
      tray.append(li);
      refresh();

      const xhr = item.xhr;
      xhr.open("POST", "/api/rooms/" + roomId + "/files");
      xhr.responseType = "json";
      xhr.upload.addEventListener("progress", (e) => {
        if (!e.lengthComputable) return;
        const pct = Math.min(100, Math.floor((e.loaded / e.total) * 100));
        bar.value = pct;
        bar.dataset.percent = String(pct);
      });
      xhr.addEventListener("load", () => {
        if (xhr.status === 201 && xhr.response && xhr.response.id) {
          item.result = xhr.response;
          bar.value = 100;
          bar.dataset.percent = "100";
          li.dataset.state = "done";
          status.textContent = size(item.result.size) + " ✓";
          cancel.textContent = t("upload.remove");
          opts.onReady && opts.onReady();
        } else {
          const msg = (xhr.response && xhr.response.error) || t("error.generic");
          li.dataset.state = "failed";
          status.textContent = msg;
          cancel.textContent = t("upload.remove");
          opts.toast(t("upload.failed", { name: name, error: msg }));
        }
      });
      xhr.addEventListener("error", () => {
        li.dataset.state = "failed";
        status.textContent = t("error.network");
        cancel.textContent = t("upload.remove");
      });
      const fd = new FormData();
      fd.append("file", file, name);
      xhr.send(fd);
    }
    function startAll(files) {
      for (const f of files) start(f);
    }
    function reset(roomId) {
      if (trayRoom === roomId) return;
      for (const item of [...items]) drop(item);
      trayRoom = roomId;
    }

    attach.addEventListener("click", () => input.click());
    input.addEventListener("change", () => { startAll([...input.files]); input.value = ""; });
    byTestId("composer").addEventListener("paste", (e) => {
      const files = e.clipboardData ? [...e.clipboardData.files] : [];
      if (files.length === 0) return; // plain text: the textarea's own paste
      e.preventDefault();
      startAll(files);
    });
    if (room) {
      const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes("Files");
      room.dataset.dropText = t("upload.drop");
      room.addEventListener("dragover", (e) => {
        if (!hasFiles(e)) return;
        e.preventDefault();
        e.dataTransfer.dropEffect = "copy";
        room.classList.add("dragging");
      });
      room.addEventListener("dragleave", (e) => { if (e.target === room || !room.contains(e.relatedTarget)) room.classList.remove("dragging"); });
      room.addEventListener("drop", (e) => {
        room.classList.remove("dragging");
        if (!hasFiles(e)) return;
        e.preventDefault();
        startAll([...e.dataTransfer.files]);
      });
    }

    return {
      ready: () => items.filter((x) => x.result && trayRoom === opts.room()).map((x) => x.result.id),
      busy: () => items.some((x) => !x.result && x.li.dataset.state === "uploading"),
      clear: () => { for (const item of items.filter((x) => x.result)) { item.li.remove(); } items = items.filter((x) => !x.result); refresh(); },
      reset: reset,
    };
  }

  return Object.freeze({ init: init, render: render, size: size });
})();
