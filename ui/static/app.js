// stompbox web UI. One plain script, no build step. The server renders each
// page's frame and hands data over in <script type="application/json" id="boot">;
// this file adds the behaviour. It never builds HTML from strings: everything
// people typed goes into the page through textContent and DOM methods, so a
// message can never become markup (no HTML-parsing DOM sink is used here;
// ui/static_test.go checks).
//
// Sections: helpers, language, API, sign-in forms, settings, admin, and the
// chat (state, rendering, STOMP connection, composer, dialogs, search,
// notifications). The chat also runs the embed page, without its sidebar.
(function () {
  "use strict";

  // ---- limits and timings (named, with why) ----
  const PAGE_SIZE = 50;              // messages per history request: one screen and a half; the API allows 200
  const RECONNECT_MIN_MS = 1000;     // first retry after a drop: quick, since most drops are brief
  const RECONNECT_MAX_MS = 30000;    // cap: a Pi with 100 phones must not be stormed after a restart
  const NODE_HINT_AFTER = 3;          // failed reconnects (about 7 s down) before a cluster's other nodes are offered: a restart takes less
  const CONNECT_TIMEOUT_MS = 15000;  // SockJS may try several transports; give up on one attempt after this
  const TYPING_SEND_EVERY_MS = 3000; // at most one typing notice per room per 3 s while typing
  const TYPING_SHOW_MS = 6000;       // how long "is typing" stays without a new notice
  const GROUP_WINDOW_MS = 5 * 60 * 1000; // consecutive messages of one sender within 5 min share a header
  const NEAR_BOTTOM_PX = 80;         // "at the bottom" tolerance for auto-scroll and read marks
  const LOAD_OLDER_PX = 150;         // start loading older messages this close to the top
  const READ_DEBOUNCE_MS = 600;      // coalesce read marks while messages stream in
  const MENTION_MAX = 8;
  const LEARN_USERS_DELAY_MS = 300; // gather a burst of unknown senders into one /api/users call
  const NOTIFIED_MAX = 5000;         // remembered message ids for notification dedupe; a day of busy chat             // suggestions shown at once
  const SEARCH_JUMP_PAGES = 20;      // older pages fetched at most to reach a search hit or a reply's original
  const CONFIRM_MS = 4000;           // a delete button waits this long for its confirming second click
  const REFRESH_HELD_MAX = 200;      // messages re-read after a reconnect to catch edits, deletions and reactions missed
  const REPLY_QUOTE_CHARS = 140;     // characters of the original a reply quotes (the server's replyQuoteRunes)
  const QUICK_REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀"]; // the picker's first row; any other emoji can be typed
  const TOAST_MS = 6000;
  const ROOMS_REFRESH_MS = 30000;    // room list poll: new rooms and DMs appear within half a minute; one small GET
  const ROOMS_REFRESH_MIN_MS = 5000; // no more often than this, however often the tab is shown
  const LANG_KEY = "stompbox_lang";  // localStorage key and cookie name (ui.LangCookie)
  const NOTIFY_KEY = "stompbox_notify";
  const LAST_ROOM_KEY = "stompbox_last_room";

  const boot = JSON.parse(document.getElementById("boot").textContent);
  // The server's -max-message and -max-subscriptions, with their defaults when absent.
  const MAX_MESSAGE = boot.maxMessage || 4000; // characters in one chat message
  const MAX_SUBSCRIPTIONS = boot.maxSubscriptions || 256; // per connection
  const EDIT_MINUTES = boot.editMinutes || 0; // -edit-minutes: how long authors may edit; 0 forever
  // Room subscriptions leave a quarter of the allowance (at most 56, at least 4)
  // for the user queues, presence and typing of the open room.
  const MAX_ROOM_SUBSCRIPTIONS = Math.max(1, MAX_SUBSCRIPTIONS - Math.max(4, Math.min(56, Math.ceil(MAX_SUBSCRIPTIONS / 4))));
  const DICT = window.StompboxI18n;

  // ---- helpers ----
  const byTestId = (id, root) => (root || document).querySelector('[data-testid="' + id + '"]');
  function el(tag, props, ...children) {
    const n = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === "class") n.className = v;
        else if (k === "text") n.textContent = v;
        else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role" || k === "href" || k === "id") n.setAttribute(k, v);
        else n[k] = v;
      }
    }
    for (const c of children) if (c !== null && c !== undefined) n.append(c);
    return n;
  }
  // icon draws one of the interface's marks as inline SVG (never an emoji,
  // which needs a colour emoji font many offline PCs lack).
  const SVG_NS = "http://www.w3.org/2000/svg";
  const ICONS = {
    lock: ["M7 11V8a5 5 0 0 1 10 0v3", "M5 11h14v10H5z"],
    trash: ["M4 7h16", "M9 7V4h6v3", "M6 7l1 13h10l1-13", "M10 11v6", "M14 11v6"],
    reply: ["M9 14L4 9l5-5", "M4 9h10a6 6 0 0 1 6 6v4"],
    smile: ["M12 21a9 9 0 1 0 0-18a9 9 0 0 0 0 18z", "M8 14s1.5 2 4 2s4-2 4-2", "M9 9.5h.01", "M15 9.5h.01"],
    pencil: ["M4 20h4L19 9l-4-4L4 16z", "M13.5 6.5l4 4"],
    close: ["M6 6l12 12", "M18 6L6 18"],
  };
  function icon(name, cls) {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("class", "icon " + (cls || "icon-" + name));
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "16");
    svg.setAttribute("height", "16");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    for (const d of ICONS[name]) {
      const path = document.createElementNS(SVG_NS, "path");
      path.setAttribute("d", d);
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", "currentColor");
      path.setAttribute("stroke-width", "2");
      path.setAttribute("stroke-linecap", "round");
      path.setAttribute("stroke-linejoin", "round");
      svg.append(path);
    }
    return svg;
  }
  const storage = {
    get(k) { try { return localStorage.getItem(k); } catch (_) { return null; } },
    set(k, v) { try { localStorage.setItem(k, v); } catch (_) { /* private mode */ } },
  };

  // ---- language ----
  function cookieLang() {
    const m = document.cookie.match(/(?:^|;\s*)stompbox_lang=([a-z]+)/);
    return m ? m[1] : null;
  }
  function pickLang() {
    const stored = storage.get(LANG_KEY);
    if (stored && DICT[stored]) return stored;
    for (const l of navigator.languages || [navigator.language]) {
      const p = String(l || "").toLowerCase().split("-")[0];
      if (DICT[p]) return p;
    }
    return DICT[boot.defaultLang] ? boot.defaultLang : "en";
  }
  function setLangCookie(lang) {
    document.cookie = LANG_KEY + "=" + lang + "; Path=/; Max-Age=31536000; SameSite=Lax";
  }
  const lang = pickLang();
  if (cookieLang() !== lang) {
    setLangCookie(lang);
    // The server rendered another language because it did not know ours yet:
    // reload once so the whole page speaks one language.
    if (lang !== boot.lang && cookieLang() === lang && !sessionStorage.getItem("stompbox_lang_reload")) {
      sessionStorage.setItem("stompbox_lang_reload", "1");
      location.reload();
      return;
    }
  }
  function t(key, vars) {
    let s = (DICT[lang] && DICT[lang][key]) || DICT.en[key] || key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return s;
  }
  for (const sel of document.querySelectorAll(".lang-select")) {
    sel.value = lang;
    sel.addEventListener("change", () => {
      storage.set(LANG_KEY, sel.value);
      setLangCookie(sel.value);
      location.reload();
    });
  }
  const timeFmt = new Intl.DateTimeFormat(lang, { hour: "numeric", minute: "2-digit" });
  const dayFmt = new Intl.DateTimeFormat(lang, { year: "numeric", month: "long", day: "numeric", weekday: "long" });
  const fullFmt = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  const listFmt = Intl.ListFormat ? new Intl.ListFormat(lang, { type: "conjunction" }) : null;
  const dayKey = (d) => d.getFullYear() + "-" + (d.getMonth() + 1) + "-" + d.getDate();
  function dayLabel(d) {
    const today = new Date();
    if (dayKey(d) === dayKey(today)) return t("day.today");
    const y = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (dayKey(d) === dayKey(y)) return t("day.yesterday");
    return dayFmt.format(d);
  }

  // ---- server texts ----
  // The server speaks English in error texts (STOMP ERROR headers, refused
  // SENDs, API errors). serverText shows the page's language instead: known
  // texts map to i18n keys ("err.*"); on an English page an unknown text is
  // shown as it is, on any other page as the generic error.
  const SERVER_TEXTS = [
    ["server shutting down", "err.shutdown"],
    ["slow consumer", "err.slowConsumer"],
    ["internal error", "err.internal"],
    ["malformed JSON", "err.badRequest"],
    ["empty message", "err.emptyMessage"],
    ["message too long", "err.tooLong"],
    ["unknown room", "err.unknownRoom"],
    ["unknown user", "err.unknownUser"],
    ["not a member of this room", "err.notMember"],
    ["room is archived", "err.archived"],
    ["administrators only", "err.adminOnly"],
    ["wrong username or password", "err.badLogin"],
    ["login required", "err.loginRequired"],
    ["name already taken", "err.nameTaken"],
    ["registration needs an invite", "err.needInvite"],
    ["invalid or used invite code", "err.badInvite"],
    ["too many attempts", "err.tooManyAttempts"],
    ["rate limit exceeded", "err.rateLimited"],
    ["server busy, retry", "err.busy"],
    ["too many connections", "err.tooManyConnections"],
    ["too many subscriptions", "err.tooManySubscriptions"],
    ["message not saved", "err.notSaved"],
    ["unknown message", "err.unknownMessage"],
    ["only the author can edit", "err.notAuthor"],
    ["only the author, the room's owner", "err.cannotDelete"],
    ["too late to edit", "err.editTooLate"],
    ["message was deleted", "err.messageDeleted"],
    ["replyTo must be", "err.badReply"],
    ["a reaction is one emoji", "err.badEmoji"],
    ["too many reactions", "err.tooManyReactions"],
    ["room limit reached", "err.roomLimit"],
    ["password must be at least", "err.passwordShort"],
    ["username ", "err.badUsername"],
    ["room name must be", "err.badRoomName"],
    ["only the room's owner or an administrator can remove", "err.cannotRemove"],
    ["to remove yourself, leave", "err.removeSelf"],
  ];
  function serverText(text) {
    if (!text) return "";
    const s = String(text);
    for (const [start, key] of SERVER_TEXTS) if (s.startsWith(start)) return t(key);
    return lang === "en" ? s : t("error.generic");
  }

  // ---- toasts ----
  function toast(text) {
    const box = byTestId("toasts");
    if (!box) return;
    const n = el("div", { class: "toast", text: text });
    box.append(n);
    setTimeout(() => n.remove(), TOAST_MS);
  }

  // ---- API ----
  // api calls the JSON API and returns the decoded body. A non-2xx answer
  // throws an Error with the server's {"error": …} text and .status.
  async function api(method, path, body) {
    const opts = { method: method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, opts);
    } catch (_) {
      const e = new Error(t("error.network"));
      e.status = 0;
      throw e;
    }
    const text = await res.text();
    let data = null;
    if (text) { try { data = JSON.parse(text); } catch (_) { data = null; } }
    if (!res.ok) {
      if (res.status === 401 && boot.page !== "login" && boot.page !== "setup" && boot.page !== "register") {
        location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search + location.hash));
      }
      const e = new Error(serverText(data && data.error) || t("error.generic"));
      e.status = res.status;
      throw e;
    }
    return data;
  }
  // list accepts an array or an object wrapping one ({rooms: […]}).
  function list(data, key) {
    if (Array.isArray(data)) return data;
    if (data && Array.isArray(data[key])) return data[key];
    if (data && typeof data === "object") for (const v of Object.values(data)) if (Array.isArray(v)) return v;
    return [];
  }

  // ---- sign-in forms ----
  function initAuthForm(form) {
    const err = byTestId("form-error", form);
    const button = form.querySelector('button[type="submit"]');
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      err.hidden = true;
      button.disabled = true;
      const body = Object.fromEntries(new FormData(form));
      const invite = new URLSearchParams(location.search).get("invite");
      if (invite && form.getAttribute("action") === "/api/register") body.invite = invite; // invitation links: /register?invite=…
      try {
        await api("POST", form.getAttribute("action"), body);
        if (form.getAttribute("action") === "/api/register") {
          // Register may or may not sign in; signing in again is harmless.
          await api("POST", "/api/login", { username: body.username, password: body.password });
        }
        location.assign(form.dataset.done || "/");
      } catch (ex) {
        err.textContent = ex.message;
        err.hidden = false;
        button.disabled = false;
      }
    });
  }

  // ---- settings ----
  function initSettings() {
    const toggle = byTestId("notify-toggle");
    const state = byTestId("notify-state");
    const supported = "Notification" in window;
    const show = () => {
      if (!supported) { state.textContent = t("notify.unsupported"); toggle.disabled = true; return; }
      toggle.checked = storage.get(NOTIFY_KEY) === "on" && Notification.permission === "granted";
      state.textContent = Notification.permission === "denied" ? t("notify.denied") : toggle.checked ? t("notify.on") : t("notify.off");
    };
    toggle.addEventListener("change", async () => {
      if (toggle.checked) {
        const p = await Notification.requestPermission();
        storage.set(NOTIFY_KEY, p === "granted" ? "on" : "off");
      } else {
        storage.set(NOTIFY_KEY, "off");
      }
      show();
    });
    show();

    const form = byTestId("webhook-form");
    const input = byTestId("webhook-input");
    const err = byTestId("form-error", form);
    const ok = byTestId("form-ok", form);
    api("GET", "/api/me").then((me) => {
      const url = me && (me.webhookUrl || me.webhookURL || me.webhook);
      if (typeof url === "string") input.value = url;
    }).catch(() => {});
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      err.hidden = true; ok.hidden = true;
      try {
        await api("PUT", "/api/me/webhook", { url: input.value.trim() });
        ok.textContent = t("settings.saved");
        ok.hidden = false;
      } catch (ex) {
        err.textContent = ex.message;
        err.hidden = false;
      }
    });
  }

  // ---- admin ----
  async function initAdmin() {
    const people = byTestId("people-table").tBodies[0];
    const rooms = byTestId("rooms-table").tBodies[0];
    try {
      const users = list(await api("GET", "/api/users"), "users");
      people.replaceChildren(...users.map((u) => el("tr", { "data-testid": "person-row" },
        el("td", { text: u.username }),
        el("td", { text: u.displayName || "" }),
        el("td", { text: u.isAdmin ? t("admin.roleAdmin") : t("admin.roleMember") }))));
    } catch (ex) { toast(ex.message); }
    const loadRooms = async () => {
      const all = list(await api("GET", "/api/rooms"), "rooms");
      rooms.replaceChildren(...all.map((r) => {
        const b = el("button", { type: "button", class: "secondary", text: r.archived ? t("admin.unarchive") : t("admin.archive"), "data-testid": "archive-room" });
        b.addEventListener("click", async () => {
          try { await api("PATCH", "/api/rooms/" + r.id, { archived: !r.archived }); await loadRooms(); } catch (ex) { toast(ex.message); }
        });
        return el("tr", { "data-testid": "room-row" },
          el("td", { text: r.name }),
          el("td", { text: t("kind." + (r.kind || "public")) }),
          el("td", null, el("span", { text: (r.archived ? t("admin.archived") : t("admin.active")) + " " }), b));
      }));
    };
    try { await loadRooms(); } catch (ex) { toast(ex.message); }

    const status = byTestId("signup-status");
    const say = (text) => { status.textContent = text; status.hidden = false; };
    const modes = [["registration-open", "open"], ["registration-invite", "invite"]];
    for (const [id, mode] of modes) {
      byTestId(id).addEventListener("click", async () => {
        try {
          await api("PUT", "/api/admin/registration", { mode: mode });
          // The pressed button is the mode in force (the page is rendered with it).
          for (const [other, m] of modes) byTestId(other).setAttribute("aria-pressed", m === mode ? "true" : "false");
          say(t(mode === "open" ? "admin.signupIsOpen" : "admin.signupIsInvite"));
        } catch (ex) { toast(ex.message); }
      });
    }
    byTestId("copy-invite").addEventListener("click", async () => {
      const ok = await window.StompboxMarkdown.copyText(byTestId("invite-link").value);
      say(ok ? t("admin.inviteCopied") : t("code.copyFailed"));
    });
    byTestId("create-invite").addEventListener("click", async () => {
      try {
        const inv = await api("POST", "/api/admin/invites");
        const link = new URL("/register?invite=" + encodeURIComponent(inv.code), location.href).href;
        const input = byTestId("invite-link");
        input.value = link;
        byTestId("invite-box").hidden = false;
        const when = new Date(inv.expiresAt);
        say(isNaN(when) ? "" : t("admin.inviteExpires", { when: fullFmt.format(when) }));
        input.focus();
        input.select();
      } catch (ex) { toast(ex.message); }
    });
  }

  // ---- chat ----
  function initChat(embed) {
    const me = boot.user;
    const ui = {
      conn: byTestId("conn-state"),
      connMain: byTestId("conn-state-main"),
      roomList: byTestId("room-list"),
      dmList: byTestId("dm-list"),
      otherList: byTestId("other-rooms"),
      title: byTestId("room-title"),
      topic: byTestId("room-topic"),
      empty: byTestId("room-empty"),
      room: byTestId("room"),
      online: byTestId("online-list"),
      history: byTestId("history"),
      historyTop: byTestId("history-top"),
      messages: byTestId("messages"),
      jump: byTestId("jump-latest"),
      typing: byTestId("typing"),
      form: byTestId("composer-form"),
      composer: byTestId("composer"),
      mentions: byTestId("mention-list"),
      join: byTestId("join-room"),
      leave: byTestId("leave-room"),
      drawer: byTestId("drawer-toggle"),
      scrim: byTestId("scrim"),
    };

    const rooms = new Map();      // id -> room from /api/rooms
    const states = new Map();     // id -> message state of a room we have looked at
    const users = new Map();      // username -> {username, displayName}
    const typers = new Map();     // username -> expiry ms, for the current room
    const notified = new Set();   // message ids already notified
    let current = 0;              // open room id
    let client = null;
    let connected = false;
    let everConnected = false;
    let attempts = 0;
    let subs = new Map();         // destination -> subscription, for this connection only
    let extraSubs = [];           // presence + typing of the current room
    let lastTypingSent = 0;
    let sendSeq = 0;
    const unconfirmed = new Map(); // receipt -> {roomId, text} of a SEND not yet confirmed
    let readTimer = 0;
    let typingTimer = 0;

    // Files and pictures (upload.js): the composer's uploads, sent with the next message.
    const uploads = window.StompboxUpload ? window.StompboxUpload.init({ room: () => current, t: t, toast: toast, maxUpload: boot.maxUpload }) : null;
    // Sends wait in the outbox (pwa.js) until the server confirms them.
    const outbox = window.StompboxOutbox && me ? window.StompboxOutbox.init({ userId: me.id, t: t, connected: () => connected, changed: () => renderPending() }) : null;

    const nameOf = (username) => {
      const u = users.get(username);
      return (u && u.displayName) || username;
    };
    const senderName = (m) => m.senderName || nameOf(m.sender);

    function state(id) {
      let s = states.get(id);
      if (!s) {
        s = { msgs: [], ids: new Set(), lastId: 0, loaded: false, loading: null, pending: [], pendingEvents: [], hasMore: true, loadingOlder: false };
        states.set(id, s);
      }
      return s;
    }
    // insert adds m in id order unless its id is known (the second line of
    // defence against duplicates after since-id resumes). It returns whether
    // m was new and whether it went to the end.
    function insert(s, m) {
      if (!m || typeof m.id !== "number" || s.ids.has(m.id)) return { added: false };
      s.ids.add(m.id);
      const last = s.msgs[s.msgs.length - 1];
      let atEnd = true;
      if (!last || m.id > last.id) {
        s.msgs.push(m);
      } else {
        let i = s.msgs.length;
        while (i > 0 && s.msgs[i - 1].id > m.id) i--;
        s.msgs.splice(i, 0, m);
        atEnd = false;
      }
      if (m.id > s.lastId) s.lastId = m.id;
      return { added: true, atEnd: atEnd };
    }

    // ---- connection state ----
    // renderNodeHint shows, under the composer, links to the cluster's
    // other nodes (boot.nodes, -cluster-urls) while this one does not
    // answer: the login is per address, so the person opens another node
    // and signs in there, where the whole history is too.
    function renderNodeHint(show) {
      let hint = byTestId("node-hint");
      const others = (boot.nodes || []).filter((u) => {
        try { return new URL(u).origin !== location.origin; } catch (_) { return false; }
      });
      if (!show || others.length === 0) { if (hint) hint.remove(); return; }
      if (hint) return;
      const form = byTestId("composer-form");
      if (!form) return;
      hint = el("p", { class: "node-hint hint", role: "status", "data-testid": "node-hint" }, t("conn.otherNodes") + " ");
      others.forEach((u, i) => {
        if (i > 0) hint.append(", ");
        hint.append(el("a", { href: u + "/", "data-testid": "node-link", text: new URL(u).host }));
      });
      hint.append(" " + t("conn.otherNodesHow"));
      form.append(hint);
    }
    // setConn shows the connection's state in the sidebar and, for phones
    // (whose sidebar is a closed drawer), in the room's header.
    function setConn(st) {
      for (const n of [ui.conn, ui.connMain]) {
        if (!n) continue;
        n.dataset.state = st;
        n.textContent = t("conn." + st);
      }
    }

    // ---- rendering: room list ----
    function roomLabel(r) {
      if (r.kind === "dm" && r.dmWith) return nameOf(r.dmWith);
      if (r.kind === "dm" && me) {
        // Without dmWith, DM rooms are named after both people; show the other one.
        const other = String(r.name || "").split(/[,:\s]+/).filter((x) => x && x !== me.username && x !== "dm");
        if (other.length === 1) return nameOf(other[0]);
      }
      return r.name;
    }
    function renderRoomList() {
      if (!ui.roomList) return;
      const mine = [], dms = [], other = [];
      for (const r of rooms.values()) {
        if (r.archived) continue;
        if (r.kind === "dm") dms.push(r);
        else if (r.member) mine.push(r);
        else if (r.kind === "public") other.push(r);
      }
      const byName = (a, b) => String(roomLabel(a)).localeCompare(String(roomLabel(b)), lang);
      const item = (r) => {
        const unread = r.unread > 0 && r.id !== current;
        const a = el("a", {
          class: "room-link" + (unread ? " unread" : ""), href: "#room-" + r.id,
          "data-testid": "room-link", "data-room-id": String(r.id), "aria-current": r.id === current ? "true" : null,
        },
        r.kind === "private" ? el("span", { class: "prefix", "aria-hidden": "true", "data-testid": "private-mark" }, icon("lock")) :
          el("span", { class: "prefix", "aria-hidden": "true", text: r.kind === "dm" ? "@" : "#" }),
        el("span", { class: "name", text: roomLabel(r) }));
        // Tapping the room already open changes no hash, so hashchange does
        // not close the drawer: close it here, for every room tap.
        a.addEventListener("click", () => setDrawer(false));
        if (unread) {
          a.append(el("span", { class: "badge", "aria-hidden": "true", "data-testid": "unread-badge", text: r.unread > 99 ? "99+" : String(r.unread) }),
            el("span", { class: "visually-hidden", text: t("unread", { n: r.unread }) }));
        }
        return el("li", null, a);
      };
      ui.roomList.replaceChildren(...mine.sort(byName).map(item));
      ui.dmList.replaceChildren(...dms.sort(byName).map(item));
      ui.otherList.replaceChildren(...other.sort(byName).map(item));
      const unreadTotal = [...rooms.values()].reduce((n, r) => n + (r.id !== current && r.unread > 0 ? r.unread : 0), 0);
      document.title = (unreadTotal > 0 ? "(" + unreadTotal + ") " : "") + (current && rooms.get(current) ? roomLabel(rooms.get(current)) + " · " : "") + "stompbox";
    }

    // ---- rendering: messages ----
    // appendText puts text into parent as text nodes, with http(s) links as
    // <a> elements and @mentions of known people emphasised. Nothing in the
    // text is ever parsed as HTML.
    // Usernames are letters (any script), digits, '.', '_' and '-'.
    const TOKEN = /(https?:\/\/[^\s<>"']+)|(@[\p{L}\p{N}._-]+)/giu;
    function appendText(parent, text) {
      let last = 0;
      text = String(text == null ? "" : text);
      for (const m of text.matchAll(TOKEN)) {
        let tok = m[0];
        let end = m.index + tok.length;
        if (m[1]) {
          const trail = tok.match(/[.,;:!?)\]}'"]+$/);
          if (trail) { tok = tok.slice(0, -trail[0].length); end -= trail[0].length; }
        } else {
          const dots = tok.match(/\.+$/); // "@bob." ends a sentence
          if (dots) { tok = tok.slice(0, -dots[0].length); end -= dots[0].length; }
        }
        let node = null;
        if (m[1]) {
          try {
            const u = new URL(tok);
            if (u.protocol === "http:" || u.protocol === "https:") {
              node = el("a", { href: u.href, target: "_blank", rel: "noopener noreferrer", text: tok });
            }
          } catch (_) { node = null; }
        } else if (users.has(tok.slice(1))) {
          node = el("span", { class: "mention", text: tok });
        }
        if (!node) continue;
        if (m.index > last) parent.append(document.createTextNode(text.slice(last, m.index)));
        parent.append(node);
        last = end;
      }
      if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
    }
    function mentionsMe(m) {
      if (!me || !m.message) return false;
      const esc = me.username.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      return new RegExp("(^|[^\\p{L}\\p{N}._-])@" + esc + "(?![\\p{L}\\p{N}_-])", "iu").test(m.message);
    }
    function daySeparator(d) {
      return el("li", { class: "day-sep", role: "separator", "data-testid": "day-separator", text: dayLabel(d) });
    }
    // canDelete says whether the signed-in person may delete m: their own,
    // or any in a room they created, or any as an administrator (the server
    // decides; this only hides buttons that would be refused).
    function canDelete(m) {
      if (!me) return false;
      const r = rooms.get(m.roomId);
      return m.sender === me.username || me.isAdmin || !!(r && r.createdBy && r.createdBy === me.id && r.kind !== "dm");
    }
    function canEdit(m) {
      return !!me && m.sender === me.username && (EDIT_MINUTES <= 0 || Date.now() - new Date(m.createdAt) < EDIT_MINUTES * 60000);
    }
    function renderBody(body, m) {
      if (m.deleted) {
        body.classList.add("msg-deleted");
        body.append(el("span", { "data-testid": "message-deleted", text: t("msg.deleted") }));
        return;
      }
      window.StompboxMarkdown.render(body, m.message, { isMention: (name) => users.has(name), t: t });
    }
    // replyQuote is the line above a reply: who wrote the original and its
    // start, or that it was deleted; a click shows the original.
    function replyQuote(m) {
      const q = m.reply || { id: m.replyTo, deleted: true };
      const b = el("button", { type: "button", class: "reply-quote", "data-testid": "reply-quote", "data-reply-to": String(q.id) },
        el("span", { class: "reply-arrow", "aria-hidden": "true" }, icon("reply")));
      if (q.deleted) {
        b.append(el("span", { class: "reply-text msg-deleted", text: t("msg.replyDeleted") }));
      } else {
        b.append(el("span", { class: "reply-sender", text: senderName(q) }));
        const text = el("span", { class: "reply-text" });
        appendText(text, String(q.message || "").replace(/\s+/g, " "));
        b.append(text);
      }
      b.setAttribute("aria-label", t("msg.showOriginal"));
      b.addEventListener("click", () => jumpTo(m.roomId || current, q.id));
      return b;
    }
    function reactionsRow(m) {
      const row = el("div", { class: "reactions", "data-testid": "reactions" });
      for (const r of m.reactions || []) {
        const mine = !!me && r.users.includes(me.username);
        const who = listFmt ? listFmt.format(r.users.map(nameOf)) : r.users.map(nameOf).join(", ");
        const b = el("button", {
          type: "button", class: "reaction" + (mine ? " mine" : ""), "data-testid": "reaction", "data-emoji": r.emoji,
          "aria-pressed": mine ? "true" : "false", title: t("react.who", { names: who, emoji: r.emoji }),
        }, el("span", { class: "reaction-emoji", text: r.emoji }), el("span", { class: "reaction-count", "data-testid": "reaction-count", text: String(r.users.length) }));
        b.addEventListener("click", () => react(m, r.emoji, !mine));
        // Long-press on a phone (contextmenu) says who reacted; a title does not show there.
        b.addEventListener("contextmenu", (e) => { e.preventDefault(); toast(b.title); });
        row.append(b);
      }
      return row;
    }
    // actions are the buttons beside a message: reply, react, edit, delete.
    // They show on hover, on keyboard focus, and on a tap of the message.
    function actionsBar(m) {
      const bar = el("div", { class: "msg-actions", "data-testid": "message-actions" });
      const btn = (id, label, mark, fn) => {
        const b = el("button", { type: "button", class: "icon-btn", "data-testid": id, "aria-label": label, title: label }, icon(mark));
        b.addEventListener("click", (e) => { e.stopPropagation(); fn(b); });
        bar.append(b);
      };
      const r = rooms.get(m.roomId || current);
      const canWrite = !!(r && r.member && !r.archived);
      if (canWrite) {
        btn("msg-reply", t("msg.reply"), "reply", () => startReply(m));
        btn("msg-react", t("msg.react"), "smile", (b) => openPicker(m, b));
      }
      if (canWrite && canEdit(m)) btn("msg-edit", t("msg.edit"), "pencil", () => startEdit(m));
      if (canDelete(m)) {
        btn("msg-delete", t("msg.delete"), "trash", (b) => {
          // A second click within a few seconds confirms; no browser dialog.
          if (b.dataset.confirm === "1") { deleteMessage(m); return; }
          b.dataset.confirm = "1";
          b.textContent = t("msg.confirmDelete");
          b.classList.add("confirm");
          setTimeout(() => { if (b.isConnected) { b.dataset.confirm = ""; b.replaceChildren(icon("trash")); b.classList.remove("confirm"); } }, CONFIRM_MS);
        });
      }
      return bar;
    }
    function messageNode(m, prev) {
      const when = new Date(m.createdAt);
      if (m.type === "ENTER" || m.type === "LEAVE") {
        return el("li", { class: "msg-event", "data-testid": "message-event", "data-id": String(m.id) },
          t(m.type === "ENTER" ? "event.enter" : "event.leave", { name: senderName(m) }));
      }
      const cont = !m.replyTo && prev && prev.type !== "ENTER" && prev.type !== "LEAVE" && prev.sender === m.sender &&
        when - new Date(prev.createdAt) < GROUP_WINDOW_MS && dayKey(when) === dayKey(new Date(prev.createdAt));
      const classes = ["msg"];
      if (cont) classes.push("cont");
      if (me && m.sender === me.username) classes.push("mine");
      else if (!m.deleted && mentionsMe(m)) classes.push("mentioned");
      const body = el("div", { class: "msg-text", "data-testid": "message-text" });
      renderBody(body, m);
      const time = el("time", { class: "msg-time", dateTime: isNaN(when) ? "" : when.toISOString(), title: isNaN(when) ? "" : fullFmt.format(when), text: isNaN(when) ? "" : timeFmt.format(when) });
      const head = el("div", { class: "msg-head" },
        el("span", { class: "msg-sender", "data-testid": "message-sender", text: senderName(m) }),
        time);
      const li = el("li", { class: classes.join(" "), "data-testid": "message", "data-id": String(m.id), "data-sender": m.sender });
      if (m.replyTo) li.append(replyQuote(m));
      li.append(head, body);
      if (!m.deleted && Array.isArray(m.attachments) && m.attachments.length && window.StompboxUpload) li.append(window.StompboxUpload.render(m.attachments));
      if (m.editedAt && !m.deleted) {
        const edited = new Date(m.editedAt);
        li.append(el("span", { class: "msg-edited", "data-testid": "message-edited", title: isNaN(edited) ? "" : fullFmt.format(edited), text: t("msg.edited") }));
      }
      if (m.reactions && m.reactions.length && !m.deleted) li.append(reactionsRow(m));
      if (!m.deleted && !embed) li.append(actionsBar(m));
      li.addEventListener("click", (e) => {
        // A tap on a phone shows the actions of this message only.
        if (e.target.closest("a, button, pre, .code-block")) return;
        for (const o of ui.messages.querySelectorAll(".msg.show-actions")) if (o !== li) o.classList.remove("show-actions");
        li.classList.toggle("show-actions");
      });
      return li;
    }
    function needsDay(m, prev) {
      return !prev || dayKey(new Date(prev.createdAt)) !== dayKey(new Date(m.createdAt));
    }
    function renderMessages() {
      const s = state(current);
      const nodes = [];
      let prev = null;
      for (const m of s.msgs) {
        if (needsDay(m, prev)) nodes.push(daySeparator(new Date(m.createdAt)));
        nodes.push(messageNode(m, prev));
        prev = m;
      }
      ui.messages.replaceChildren(...nodes);
      ui.historyTop.textContent = s.loaded && !s.hasMore ? t("history.start") : "";
      renderPending();
    }
    function appendMessage(m) {
      const s = state(current);
      const prev = s.msgs[s.msgs.length - 2] || null;
      if (needsDay(m, prev)) ui.messages.append(daySeparator(new Date(m.createdAt)));
      ui.messages.append(messageNode(m, prev));
      renderPending();
    }

    // ---- the offline copy of what was shown ----
    // keepOffline hands the service worker (sw.js) the newest messages held
    // for a room after live ones arrived or changed, so that a reload
    // without the server shows them too, not only the history of the last
    // page load. At most KEEP_OFFLINE_MAX per room; the worker keeps them
    // only for the session that fetched the room (it drops its cache on
    // sign-out or a refused session, as before).
    const KEEP_OFFLINE_MAX = 200;
    const KEEP_OFFLINE_DELAY_MS = 400; // a burst of messages is one write
    const keepTimers = new Map();
    function keepOffline(id) {
      if (embed || keepTimers.has(id) || !navigator.serviceWorker || !navigator.serviceWorker.controller) return;
      keepTimers.set(id, setTimeout(() => {
        keepTimers.delete(id);
        const s = states.get(id);
        const worker = navigator.serviceWorker.controller;
        if (!s || !s.loaded || !worker) return;
        worker.postMessage({ type: "keep-history", url: "/api/rooms/" + id + "/messages?limit=" + PAGE_SIZE, messages: s.msgs.slice(-KEEP_OFFLINE_MAX) });
      }, KEEP_OFFLINE_DELAY_MS));
    }

    // ---- messages waiting to be sent ----
    // renderPending shows the open room's messages that wait in the outbox
    // at the end of its history, marked as waiting, with retry and cancel.
    // A send the server confirms quickly while connected never shows here
    // (the outbox's visible()).
    function renderPending() {
      if (!ui.messages) return;
      for (const n of ui.messages.querySelectorAll('[data-testid="pending-message"]')) n.remove();
      if (!outbox || !current) return;
      for (const item of outbox.pending()) {
        if (item.roomId !== current || !outbox.visible(item)) continue;
        const body = el("div", { class: "msg-text", "data-testid": "pending-text" });
        window.StompboxMarkdown.render(body, item.text, { isMention: (name) => users.has(name), t: t });
        const retry = el("button", { type: "button", class: "secondary", "data-testid": "pending-retry", text: t("pending.retry") });
        const cancel = el("button", { type: "button", class: "secondary", "data-testid": "pending-cancel", text: t("pending.cancel") });
        retry.addEventListener("click", () => retrySend(item));
        cancel.addEventListener("click", () => cancelSend(item));
        ui.messages.append(el("li", { class: "msg mine pending", "data-testid": "pending-message", "data-key": item.key },
          el("div", { class: "msg-head" },
            el("span", { class: "msg-sender", text: me ? nameOf(me.username) : "" }),
            el("span", { class: "pending-mark", "data-testid": "pending-mark", text: t(connected ? "pending.sending" : "pending.waiting") })),
          body,
          el("div", { class: "pending-actions" }, retry, cancel)));
      }
    }
    // retrySend sends a waiting message again now (with its key, so the
    // server stores it once however often it is tried); offline, it asks
    // for a new connection attempt at once instead of after the backoff.
    function retrySend(item) {
      if (connected) { publishItem(item); return; }
      reconnectNow();
    }
    // cancelSend drops a waiting message: it is not sent.
    function cancelSend(item) {
      for (const [receipt, u] of unconfirmed) if (u.key === item.key) unconfirmed.delete(receipt);
      outbox.done(item.key);
    }
    const nearBottom = () => ui.history.scrollHeight - ui.history.scrollTop - ui.history.clientHeight < NEAR_BOTTOM_PX;
    const scrollToBottom = () => { ui.history.scrollTop = ui.history.scrollHeight; ui.jump.hidden = true; };

    // ---- messages arriving ----
    // receive handles one stored message from a room subscription (live or
    // replayed after since-id).
    function receive(roomId, m) {
      if (m.sender && !users.has(m.sender)) learnUser(m.sender);
      if (m.type === "ENTER" || m.type === "LEAVE") {
        if (roomId === current) scheduleMembers();
        if (m.type === "ENTER" && me && m.sender === me.username) leaving.delete(roomId); // in again
        // Our own LEAVE that we did not ask for: someone removed us. (The
        // server also says so with ACCESS_ENDED on our own queue.)
        if (m.type === "LEAVE" && me && m.sender === me.username && !leaving.has(roomId)) { accessEnded(roomId, "removed"); return; }
      }
      const r = rooms.get(roomId);
      const s = state(roomId);
      const fromMe = me && m.sender === me.username;
      if (!s.loaded) {
        // History not fetched yet: keep the message only while a fetch is
        // running (it may have been read before this was stored), else just count.
        if (s.loading) s.pending.push(m);
        else if (r && !fromMe && m.type === "TALK" && !notified.has(m.id)) { r.unread = (r.unread || 0) + 1; renderRoomList(); }
        maybeNotify(roomId, m);
        return;
      }
      const wasNear = roomId === current && nearBottom();
      const res = insert(s, m);
      if (!res.added) return;
      keepOffline(roomId);
      if (roomId === current) {
        if (res.atEnd) appendMessage(m); else renderMessages();
        if (wasNear || fromMe) scrollToBottom(); else ui.jump.hidden = false;
      }
      if (r && !fromMe && m.type === "TALK" && (roomId !== current || document.hidden || !wasNear)) {
        const exact = localUnread(r);
        r.unread = exact === null ? (r.unread || 0) + 1 : exact;
        renderRoomList();
      }
      if (m.sender && typers.delete(m.sender)) renderTyping();
      maybeNotify(roomId, m);
      scheduleRead();
    }

    // localUnread counts others' TALK messages after the read mark from the
    // messages held, when those are sure to include all of them (the whole
    // history, or a page reaching back past the mark); else null. Counting
    // rather than incrementing keeps badges right when since-id replays
    // messages the server's unread count already included.
    function localUnread(r) {
      const s = states.get(r.id);
      if (!s || !s.loaded || !me) return null;
      const mark = r.lastReadId || 0;
      if (s.hasMore && (s.msgs.length === 0 || s.msgs[0].id > mark)) return null;
      let n = 0;
      for (const m of s.msgs) if (m.id > mark && m.type === "TALK" && m.sender !== me.username) n++;
      return n;
    }

    // ---- changes to messages: edit, delete, react ----
    const CHANGE_EVENTS = new Set(["EDIT", "DELETE", "REACTION"]);
    function findMessage(s, id) {
      for (let i = s.msgs.length - 1; i >= 0; i--) if (s.msgs[i].id === id) return i;
      return -1;
    }
    // rerender replaces the nodes of messages ids of the open room.
    function rerender(roomId, ids) {
      if (roomId !== current || ids.length === 0) return;
      const s = state(roomId);
      const wasNear = nearBottom();
      for (const id of ids) {
        const i = findMessage(s, id);
        const node = ui.messages.querySelector('[data-testid="message"][data-id="' + id + '"]');
        if (i < 0 || !node) continue;
        const fresh = messageNode(s.msgs[i], s.msgs[i - 1] || null);
        if (picker && picker.parentNode === node) fresh.append(picker); // an open picker stays open
        node.replaceWith(fresh);
      }
      if (wasNear) scrollToBottom();
    }
    // applyEvent takes an EDIT, DELETE or REACTION event of a room: the
    // message changes in place, and so do the quotes of replies to it. A
    // message not held is left alone: history brings its final state.
    function applyEvent(roomId, ev) {
      const s = states.get(roomId);
      if (!s || typeof ev.messageId !== "number") return;
      if (!s.loaded) { if (s.loading) s.pendingEvents.push(ev); return; }
      const change = (m) => {
        if (ev.type === "EDIT") { m.message = ev.message; m.editedAt = ev.editedAt; }
        else if (ev.type === "DELETE") { m.deleted = true; m.message = ""; delete m.reactions; delete m.editedAt; }
        else m.reactions = ev.reactions || [];
      };
      const changed = [];
      const i = findMessage(s, ev.messageId);
      if (i >= 0) { change(s.msgs[i]); changed.push(ev.messageId); }
      if (ev.type !== "REACTION") {
        for (const m of s.msgs) {
          if (!m.reply || m.reply.id !== ev.messageId) continue;
          m.reply = ev.type === "DELETE" ? { id: ev.messageId, deleted: true } : Object.assign({}, m.reply, { message: [...String(ev.message)].slice(0, REPLY_QUOTE_CHARS).join("") });
          changed.push(m.id);
        }
      }
      if (ev.type === "DELETE" && mode && mode.m.id === ev.messageId) cancelMode();
      if (changed.length) keepOffline(roomId);
      rerender(roomId, changed);
    }
    // refreshHeld re-reads the newest messages held for a room after a
    // reconnect: since-id replays only new messages, and edits, deletions
    // and reactions of older ones may have happened meanwhile.
    async function refreshHeld(id) {
      const s = states.get(id);
      if (!s || !s.loaded || s.msgs.length === 0) return;
      let msgs;
      try {
        msgs = list(await api("GET", "/api/rooms/" + id + "/messages?before=" + (s.lastId + 1) + "&limit=" + REFRESH_HELD_MAX), "messages");
      } catch (_) { return; /* the next reconnect tries again */ }
      const changed = [];
      for (const fresh of msgs) {
        const i = findMessage(s, fresh.id);
        if (i >= 0 && JSON.stringify(s.msgs[i]) !== JSON.stringify(fresh)) { s.msgs[i] = fresh; changed.push(fresh.id); }
      }
      rerender(id, changed);
    }
    // publishChange SENDs an edit, deletion or reaction. The server stores
    // it and then publishes the event everyone (this page too) applies; a
    // refusal comes back on /user/queue/errors as a toast.
    function publishChange(dest, body) {
      if (!connected) { toast(t("error.notConnected")); return false; }
      try {
        client.publish({ destination: dest, body: JSON.stringify(body), headers: { "content-type": "application/json" } });
        return true;
      } catch (_) {
        toast(t("error.notConnected"));
        return false;
      }
    }
    function react(m, emoji, add) {
      closePicker();
      publishChange("/pub/chat/react", { roomId: m.roomId || current, messageId: m.id, emoji: emoji, remove: !add });
    }
    function deleteMessage(m) {
      publishChange("/pub/chat/delete", { roomId: m.roomId || current, messageId: m.id });
    }

    // The emoji picker: common reactions, and a field for any other emoji.
    let picker = null;
    function closePicker() {
      if (picker) { picker.remove(); picker = null; }
    }
    function openPicker(m, anchor) {
      const wasFor = picker && picker.dataset.for === String(m.id);
      closePicker();
      if (wasFor) return;
      picker = el("div", { class: "emoji-picker", role: "dialog", "aria-label": t("msg.react"), "data-testid": "emoji-picker", "data-for": String(m.id) });
      for (const e of QUICK_REACTIONS) {
        const b = el("button", { type: "button", class: "emoji-option", "data-testid": "emoji-option", text: e, "aria-label": e });
        b.addEventListener("click", (ev) => { ev.stopPropagation(); react(m, e, true); });
        picker.append(b);
      }
      const input = el("input", { class: "emoji-input", "data-testid": "emoji-input", "aria-label": t("react.other"), placeholder: t("react.other"), maxLength: 16 });
      input.addEventListener("keydown", (ev) => {
        if (ev.key === "Escape") { closePicker(); anchor.focus(); }
        if (ev.key === "Enter" && !ev.isComposing && input.value.trim()) { ev.preventDefault(); react(m, input.value.trim(), true); }
      });
      input.addEventListener("click", (ev) => ev.stopPropagation());
      picker.append(input);
      anchor.closest("li").append(picker);
      const first = picker.querySelector("button");
      if (first) first.focus();
    }
    document.addEventListener("click", (e) => { if (picker && !picker.contains(e.target)) closePicker(); });

    // ---- composer modes: replying to or editing a message ----
    let mode = null; // {kind: "reply" | "edit", m}
    const modeBar = el("div", { class: "composer-mode", "data-testid": "composer-mode", hidden: true });
    const modeText = el("span", { class: "composer-mode-text", "data-testid": "composer-mode-text" });
    const modeCancel = el("button", { type: "button", class: "icon-btn", "data-testid": "composer-mode-cancel", "aria-label": t("msg.cancel"), title: t("msg.cancel") }, icon("close"));
    modeBar.append(modeText, modeCancel);
    ui.form.before(modeBar);
    modeCancel.addEventListener("click", () => { const wasEdit = mode && mode.kind === "edit"; cancelMode(); if (wasEdit) ui.composer.value = ""; ui.composer.focus(); });
    function setMode(next) {
      mode = next;
      modeBar.hidden = !mode;
      if (!mode) { modeText.textContent = ""; return; }
      if (mode.kind === "edit") {
        modeText.textContent = t("msg.editing");
      } else {
        const snippet = [...String(mode.m.message).replace(/\s+/g, " ")].slice(0, REPLY_QUOTE_CHARS).join("");
        modeText.textContent = t("msg.replyingTo", { name: senderName(mode.m), text: snippet });
      }
    }
    function cancelMode() { setMode(null); }
    function startReply(m) {
      setMode({ kind: "reply", m: m });
      ui.composer.focus();
    }
    function startEdit(m) {
      setMode({ kind: "edit", m: m });
      ui.composer.value = m.message;
      autosize();
      ui.composer.focus();
      ui.composer.setSelectionRange(ui.composer.value.length, ui.composer.value.length);
    }

    // ---- history ----
    // loadLatest fetches the newest page of a room once; callers during the
    // fetch share its promise.
    function loadLatest(id) {
      const s = state(id);
      if (s.loaded) return Promise.resolve();
      if (!s.loading) {
        s.loading = fetchLatest(id, s).finally(() => { s.loading = null; s.pending = []; });
      }
      return s.loading;
    }
    async function fetchLatest(id, s) {
      try {
        const msgs = list(await api("GET", "/api/rooms/" + id + "/messages?limit=" + PAGE_SIZE), "messages");
        for (const m of msgs) insert(s, m);
        for (const m of s.pending) insert(s, m);
        s.hasMore = msgs.length >= PAGE_SIZE;
        s.loaded = true;
        for (const ev of s.pendingEvents.splice(0)) applyEvent(id, ev);
      } catch (ex) {
        toast(ex.message);
        return;
      }
      subscribeRoom(id); // with since-id now that we know where we are
      if (id === current) {
        renderMessages();
        scrollToBottom();
        fillScreen();
        scheduleRead();
      }
    }
    // loadOlder fetches the page before the oldest message shown, keeping
    // the view where it was.
    async function loadOlder() {
      const id = current;
      const s = state(id);
      if (!s.loaded || !s.hasMore || s.loadingOlder || s.msgs.length === 0) return;
      s.loadingOlder = true;
      ui.historyTop.textContent = t("history.loading");
      try {
        const msgs = list(await api("GET", "/api/rooms/" + id + "/messages?before=" + s.msgs[0].id + "&limit=" + PAGE_SIZE), "messages");
        for (const m of msgs) insert(s, m);
        s.hasMore = msgs.length >= PAGE_SIZE;
      } catch (ex) {
        toast(ex.message);
      } finally {
        s.loadingOlder = false;
      }
      if (id !== current) return;
      const fromBottom = ui.history.scrollHeight - ui.history.scrollTop;
      renderMessages();
      ui.history.scrollTop = ui.history.scrollHeight - fromBottom;
      fillScreen();
    }
    // fillScreen loads older pages while the history does not fill the view,
    // since then no scroll event can ask for them.
    function fillScreen() {
      const s = state(current);
      if (s.loaded && s.hasMore && ui.history.scrollHeight <= ui.history.clientHeight) loadOlder();
    }

    // ---- read marks ----
    function scheduleRead() {
      clearTimeout(readTimer);
      readTimer = setTimeout(markRead, READ_DEBOUNCE_MS);
    }
    function markRead() {
      const r = rooms.get(current);
      const s = states.get(current);
      if (!r || !s || !s.loaded || !r.member || document.hidden || !nearBottom()) return;
      if (s.lastId > (r.lastReadId || 0)) {
        r.lastReadId = s.lastId;
        // lastReadId is the contract's name; the chat API as built reads id.
        api("POST", "/api/rooms/" + r.id + "/read", { lastReadId: s.lastId, id: s.lastId }).catch(() => {});
      }
      if (r.unread) { r.unread = 0; renderRoomList(); }
    }

    // ---- STOMP ----
    const roomDest = (id) => "/sub/chat/room/" + id;
    function subscribeRoom(id) {
      if (!connected || subs.has(roomDest(id))) return;
      const s = states.get(id);
      const headers = {};
      if (s && s.loaded) headers["since-id"] = String(s.lastId);
      subs.set(roomDest(id), client.subscribe(roomDest(id), (frame) => {
        let m;
        try { m = JSON.parse(frame.body); } catch (_) { return; }
        if (m && CHANGE_EVENTS.has(m.type)) applyEvent(id, m);
        else if (m && typeof m.id === "number") receive(id, m);
      }, headers));
    }
    function subscribeExtras(id) {
      for (const s of extraSubs) { try { s.unsubscribe(); } catch (_) { /* connection gone */ } }
      extraSubs = [];
      typers.clear();
      renderTyping();
      if (!connected || !id || !rooms.has(id)) return;
      extraSubs.push(client.subscribe(roomDest(id) + "/presence", (frame) => {
        try { renderOnline(list(JSON.parse(frame.body), "online")); } catch (_) { /* ignore bad frames */ }
      }));
      extraSubs.push(client.subscribe(roomDest(id) + "/typing", (frame) => {
        let v;
        try { v = JSON.parse(frame.body); } catch (_) { return; }
        if (!v || !v.user || (me && v.user === me.username) || id !== current) return;
        typers.set(v.user, Date.now() + TYPING_SHOW_MS);
        renderTyping();
      }));
    }
    function subscribeAll() {
      subscribeRooms();
      subscribeExtras(current);
    }
    // subscribeRooms subscribes the open room and every room we belong to
    // that this connection has not subscribed yet.
    function subscribeRooms() {
      if (!connected) return;
      let n = 0;
      if (current && rooms.has(current)) { subscribeRoom(current); n++; } // a room we may no longer see would be refused
      for (const r of rooms.values()) {
        if (n >= MAX_ROOM_SUBSCRIPTIONS) break;
        if (r.member && !r.archived && r.id !== current) { subscribeRoom(r.id); n++; }
      }
    }
    function transports() {
      const q = new URLSearchParams(location.search);
      const v = q.get("transports") || q.get("transport");
      if (!v) return null;
      return v.split(",").map((x) => x.trim()).filter(Boolean);
    }
    function backoff(n) {
      const base = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * Math.pow(2, Math.max(0, n - 1)));
      return Math.round(base * (0.5 + Math.random() * 0.5)); // jitter spreads a crowd's retries
    }
    function connect() {
      const forced = transports();
      const raw = forced && forced.length === 1 && forced[0] === "ws";
      client = new window.StompJs.Client({
        webSocketFactory: () => {
          if (raw) {
            const u = new URL(boot.wsPath || "/ws", location.href);
            u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
            return new WebSocket(u.href, ["v12.stomp", "v11.stomp", "v10.stomp"]);
          }
          return new window.SockJS(boot.sockjsPath || "/ws-stomp", null, forced ? { transports: forced } : {});
        },
        heartbeatIncoming: boot.heartbeatMs || 10000,
        heartbeatOutgoing: boot.heartbeatMs || 10000,
        reconnectDelay: RECONNECT_MIN_MS,
        connectionTimeout: CONNECT_TIMEOUT_MS,
        debug: () => {},
      });
      client.onConnect = onConnect;
      client.onWebSocketClose = () => {
        // stompjs schedules the next attempt right after this, with reconnectDelay.
        connected = false;
        subs = new Map();
        extraSubs = [];
        unconfirmed.clear(); // receipts of a closed connection never come
        // Nobody is known to be online while we cannot hear the server.
        renderOnline([]);
        typers.clear();
        renderTyping();
        attempts++;
        client.reconnectDelay = backoff(attempts);
        renderNodeHint(everConnected && attempts >= NODE_HINT_AFTER);
        setConn(navigator.onLine === false ? "offline" : everConnected ? "reconnecting" : "connecting");
        if (outbox) outbox.refresh();
      };
      client.onStompError = (frame) => {
        toast(serverText(frame.headers && frame.headers.message) || t("error.generic"));
        // A refused CONNECT is most often an expired session: api() sends
        // the person to the login page on 401 instead of retrying forever.
        api("GET", "/api/me").catch(() => {});
      };
      client.activate();
    }
    async function onConnect(frame) {
      // The connection is authenticated by the cookie it carried, which may
      // be another account's by now (signed out and someone else signed in,
      // in another tab): then this page, its outbox above all, must not go
      // on as the old one. A reload shows who is signed in now.
      const who = (frame && frame.headers && frame.headers["user-name"]) || "";
      if (me && who !== me.username) {
        client.deactivate();
        location.reload();
        return;
      }
      connected = true;
      attempts = 0;
      renderNodeHint(false);
      client.reconnectDelay = RECONNECT_MIN_MS;
      setConn("connected");
      if (outbox) outbox.refresh();
      // Which transport SockJS settled on, for support questions ("websocket",
      // "xhr-streaming", "xhr-polling"…); a raw WebSocket has none.
      const tr = (client.webSocket && typeof client.webSocket.transport === "string" && client.webSocket.transport) || "websocket";
      if (ui.conn) { ui.conn.dataset.transport = tr; ui.conn.title = tr; }
      subs = new Map();
      client.subscribe("/user/queue/errors", (frame) => {
        let text = frame.body, receipt = "";
        try { const v = JSON.parse(frame.body); text = v.error || v.message || text; receipt = v.receipt || ""; } catch (_) { /* plain text */ }
        toast(serverText(text) || t("error.generic"));
        const refused = unconfirmed.get(receipt);
        if (refused) {
          unconfirmed.delete(receipt);
          if (outbox) outbox.done(refused.key);
          if (refused.roomId === current && !ui.composer.value) { ui.composer.value = refused.text; autosize(); }
        }
      });
      client.subscribe("/user/queue/notifications", (frame) => {
        let v;
        try { v = JSON.parse(frame.body); } catch (_) { return; }
        if (v && v.type === "ACCESS_ENDED" && typeof v.roomId === "number") { accessEnded(v.roomId, v.reason); return; }
        const m = v && (v.message && typeof v.message === "object" ? v.message : v);
        if (!m || !m.roomId) return;
        if (!rooms.has(m.roomId)) loadRooms().catch(() => {}); // a new DM or an invitation
        if (typeof m.id === "number") maybeNotify(m.roomId, m);
      });
      if (everConnected) {
        // Unread counts of rooms we only count may have moved while away.
        try { await loadRooms(); } catch (_) { /* keep the old list */ }
        if (!connected) return;
        if (current && !rooms.has(current)) openRoom(current); // left or removed meanwhile: say so
        for (const id of states.keys()) refreshHeld(id); // changes to messages made while away
      }
      everConnected = true;
      subscribeAll();
      if (outbox) outbox.flush(publishItem); // typed offline, or unconfirmed when the line dropped
    }
    window.addEventListener("offline", () => {
      setConn("offline");
      if (client && connected) client.forceDisconnect(); // do not wait for heart-beats to notice
    });
    // reconnectNow tries again now instead of after the backoff that built up.
    async function reconnectNow() {
      if (!client || connected) return;
      attempts = 0;
      setConn("reconnecting");
      await client.deactivate();
      client.reconnectDelay = RECONNECT_MIN_MS;
      client.activate();
    }
    window.addEventListener("online", reconnectNow);

    // ---- presence and typing ----
    function renderOnline(names) {
      presence = new Set(names);
      renderMembers();
      if (!ui.online) return;
      ui.online.parentElement.hidden = names.length === 0;
      ui.online.replaceChildren(...names.map((u) => el("li", { "data-testid": "online-user", text: nameOf(u) + (me && u === me.username ? " (" + t("you") + ")" : "") })));
    }
    function renderTyping() {
      const now = Date.now();
      for (const [u, exp] of typers) if (exp <= now) typers.delete(u);
      const names = [...typers.keys()].map(nameOf);
      ui.typing.textContent = names.length === 0 ? "" : names.length === 1 ? t("typing.one", { name: names[0] })
        : t("typing.many", { names: listFmt ? listFmt.format(names) : names.join(", ") });
      clearTimeout(typingTimer);
      if (typers.size > 0) typingTimer = setTimeout(renderTyping, 1000);
    }

    // ---- notifications ----
    function maybeNotify(roomId, m) {
      if (notified.has(m.id)) return;
      if (notified.size >= NOTIFIED_MAX) notified.clear(); // old ids will not come again
      notified.add(m.id);
      if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted" || storage.get(NOTIFY_KEY) !== "on") return;
      if (m.type !== "TALK" || !me || m.sender === me.username) return;
      const r = rooms.get(roomId);
      const dm = r && r.kind === "dm";
      if (!dm && !mentionsMe(m)) return;
      const title = dm ? t("notify.dm", { name: senderName(m) }) : t("notify.mention", { name: senderName(m), room: r ? roomLabel(r) : "#" + roomId });
      try {
        const n = new Notification(title, { body: String(m.message).slice(0, 200), tag: "stompbox-room-" + roomId });
        n.onclick = () => { window.focus(); if (!embed) location.hash = "room-" + roomId; n.close(); };
      } catch (_) { /* some mobile browsers only allow notifications from a service worker */ }
    }

    // ---- opening rooms ----
    function setDrawer(open) {
      if (!ui.drawer) return;
      document.body.classList.toggle("drawer-open", open);
      ui.drawer.setAttribute("aria-expanded", open ? "true" : "false");
      ui.scrim.hidden = !open;
      if (open) { const first = document.querySelector(".sidebar a, .sidebar button"); if (first) first.focus(); }
    }
    function showRoomHeader(r) {
      ui.title.textContent = r ? roomLabel(r) : "stompbox";
      if (ui.topic) ui.topic.textContent = (r && r.topic) || "";
      if (ui.join) ui.join.hidden = !r || !!r.member || r.kind !== "public";
      if (ui.leave) ui.leave.hidden = !r || !r.member || r.kind === "dm";
      if (mem.toggle) mem.toggle.hidden = !r || r.kind === "dm";
      const canWrite = !!(r && r.member && !r.archived);
      ui.composer.disabled = !canWrite;
      ui.composer.placeholder = !r ? "" : !r.member ? t("room.notMember")
        : t("composer.placeholder", { room: (r.kind === "dm" ? "@" : "#") + roomLabel(r) });
      ui.form.querySelector('button[type="submit"]').disabled = !canWrite;
    }
    function openRoom(id) {
      const r = rooms.get(id);
      if (!r) {
        current = 0;
        ui.room.hidden = true;
        ui.empty.hidden = false;
        if (id) ui.empty.textContent = t("room.unavailable");
        showRoomHeader(null);
        renderRoomList();
        return;
      }
      const changed = id !== current;
      current = id;
      if (uploads) uploads.reset(id);
      storage.set(LAST_ROOM_KEY, String(id));
      ui.empty.hidden = true;
      ui.room.hidden = false;
      showRoomHeader(r);
      if (changed) {
        cancelMode();
        closePicker();
        renderOnline([]);
        renderMessages();
        scrollToBottom();
        subscribeRoom(id);
        subscribeExtras(id);
        members = [];
        membersFor = 0;
        renderMembers();
        if (!embed && r.kind !== "dm") loadMembers(id);
      }
      renderRoomList();
      setDrawer(false);
      const s = state(id);
      if (!s.loaded) loadLatest(id); else scheduleRead();
      if (!embed && window.matchMedia("(min-width: 761px)").matches && !ui.composer.disabled) ui.composer.focus();
    }
    async function loadRooms() {
      const all = list(await api("GET", "/api/rooms"), "rooms");
      const seen = new Set();
      for (const r of all) {
        seen.add(r.id);
        const merged = Object.assign(rooms.get(r.id) || {}, r);
        const exact = localUnread(merged);
        if (exact !== null) merged.unread = exact;
        rooms.set(r.id, merged);
      }
      for (const id of [...rooms.keys()]) if (!seen.has(id)) rooms.delete(id);
      renderRoomList();
      if (current) showRoomHeader(rooms.get(current));
      subscribeRooms(); // rooms joined elsewhere, new DMs
    }
    async function loadUsers() {
      try {
        for (const u of list(await api("GET", "/api/users"), "users")) users.set(u.username, u);
      } catch (_) { /* mentions then complete from message senders only */ }
      if (me && !users.has(me.username)) users.set(me.username, { username: me.username, displayName: me.displayName });
    }
    // learnUser refreshes the people list when a message comes from someone
    // who signed up after this page loaded, then shows their display name.
    const askedAbout = new Set();
    let learnTimer = 0;
    function learnUser(username) {
      if (askedAbout.has(username)) return; // asked once: a deleted account stays a username
      askedAbout.add(username);
      clearTimeout(learnTimer);
      learnTimer = setTimeout(async () => {
        await loadUsers();
        if (current && !ui.room.hidden) {
          const keep = ui.history.scrollHeight - ui.history.scrollTop;
          renderMessages();
          ui.history.scrollTop = ui.history.scrollHeight - keep;
        }
        renderRoomList();
      }, LEARN_USERS_DELAY_MS);
    }
    function roomFromHash() {
      const m = location.hash.match(/^#room-(\d+)$/);
      return m ? Number(m[1]) : 0;
    }

    // ---- composer ----
    function send() {
      const text = ui.composer.value;
      if (uploads && uploads.busy()) { toast(t("upload.wait")); return; }
      const files = uploads ? uploads.ready() : [];
      if ((!text.trim() && files.length === 0) || !current) return;
      if ([...text].length > MAX_MESSAGE) { toast(t("error.tooLong", { n: MAX_MESSAGE })); return; }
      if (mode && mode.kind === "edit") {
        if (!connected) { toast(t("error.notConnected")); return; }
        if (text !== mode.m.message && !publishChange("/pub/chat/edit", { roomId: mode.m.roomId || current, messageId: mode.m.id, message: text })) return;
        cancelMode();
        ui.composer.value = "";
        autosize();
        return;
      }
      // With the outbox (pwa.js) a message typed offline waits there and goes
      // out, once, when the connection is back; without it, it stays typed.
      if (!connected && !outbox) { toast(t("error.notConnected")); return; }
      const replyTo = mode && mode.kind === "reply" ? mode.m.id : 0;
      const item = { key: outbox ? outbox.newKey() : "", roomId: current, text: text, attachments: files, replyTo: replyTo };
      if (outbox) outbox.add(item);
      if (connected && !publishItem(item) && !outbox) { toast(t("error.notConnected")); return; }
      if (uploads) uploads.clear();
      cancelMode();
      ui.composer.value = "";
      autosize();
      closeMentions();
      lastTypingSent = 0;
    }
    // publishItem SENDs one message with a receipt and its idempotency key.
    // The receipt lets a refusal on /user/queue/errors (which names it) give
    // the text back instead of losing it, and takes it out of the outbox.
    function publishItem(item) {
      const receipt = "send-" + (++sendSeq);
      const headers = { "content-type": "application/json", receipt: receipt };
      if (item.key) headers["idempotency-key"] = item.key;
      try {
        client.watchForReceipt(receipt, () => { unconfirmed.delete(receipt); if (outbox) outbox.done(item.key); });
        client.publish({ destination: "/pub/chat/message", body: JSON.stringify({ type: "TALK", roomId: item.roomId, message: item.text, replyTo: item.replyTo || undefined, attachments: item.attachments && item.attachments.length ? item.attachments : undefined }), headers: headers });
      } catch (_) {
        return false;
      }
      unconfirmed.set(receipt, { roomId: item.roomId, text: item.text, key: item.key });
      return true;
    }
    function autosize() {
      const lines = ui.composer.value.split("\n").length;
      ui.composer.rows = Math.min(8, Math.max(1, lines));
    }
    function sendTyping() {
      const now = Date.now();
      if (!connected || !current || now - lastTypingSent < TYPING_SEND_EVERY_MS) return;
      lastTypingSent = now;
      try { client.publish({ destination: "/pub/chat/typing", body: JSON.stringify({ roomId: current }), headers: { "content-type": "application/json" } }); } catch (_) { /* best effort */ }
    }

    // @mention completion: a listbox under the caret's word, driven by the keyboard.
    let mentionItems = [];
    let mentionIndex = 0;
    function mentionQuery() {
      const upto = ui.composer.value.slice(0, ui.composer.selectionStart);
      const m = upto.match(/(^|\s)@([^\s@]*)$/);
      return m ? m[2] : null;
    }
    function updateMentions() {
      const q = mentionQuery();
      if (q === null) { closeMentions(); return; }
      const ql = q.toLowerCase();
      const onlineNow = new Set([...ui.online.children].map((li) => li.textContent));
      mentionItems = [...users.values()]
        .filter((u) => (!me || u.username !== me.username) &&
          (u.username.toLowerCase().startsWith(ql) || String(u.displayName || "").toLowerCase().includes(ql)))
        .sort((a, b) => (onlineNow.has(nameOf(b.username)) - onlineNow.has(nameOf(a.username))) || a.username.localeCompare(b.username))
        .slice(0, MENTION_MAX);
      if (mentionItems.length === 0) { closeMentions(); return; }
      mentionIndex = Math.min(mentionIndex, mentionItems.length - 1);
      ui.mentions.replaceChildren(...mentionItems.map((u, i) => {
        const li = el("li", { role: "option", id: "mention-" + i, "data-testid": "mention-option", "aria-selected": i === mentionIndex ? "true" : "false" },
          el("strong", { text: "@" + u.username }), u.displayName ? " " + u.displayName : "");
        li.addEventListener("mousedown", (e) => { e.preventDefault(); pickMention(i); });
        return li;
      }));
      ui.mentions.hidden = false;
      ui.composer.setAttribute("aria-expanded", "true");
      ui.composer.setAttribute("aria-activedescendant", "mention-" + mentionIndex);
    }
    function closeMentions() {
      mentionItems = [];
      mentionIndex = 0;
      ui.mentions.hidden = true;
      ui.composer.setAttribute("aria-expanded", "false");
      ui.composer.removeAttribute("aria-activedescendant");
    }
    function pickMention(i) {
      const u = mentionItems[i];
      if (!u) return;
      const pos = ui.composer.selectionStart;
      const before = ui.composer.value.slice(0, pos).replace(/@([^\s@]*)$/, "@" + u.username + " ");
      ui.composer.value = before + ui.composer.value.slice(pos);
      ui.composer.setSelectionRange(before.length, before.length);
      closeMentions();
      ui.composer.focus();
    }
    ui.composer.addEventListener("keydown", (e) => {
      if (!ui.mentions.hidden) {
        if (e.key === "ArrowDown" || e.key === "ArrowUp") {
          e.preventDefault();
          mentionIndex = (mentionIndex + (e.key === "ArrowDown" ? 1 : mentionItems.length - 1)) % mentionItems.length;
          updateMentions();
          return;
        }
        if (e.key === "Enter" || e.key === "Tab") { e.preventDefault(); pickMention(mentionIndex); return; }
        if (e.key === "Escape") { e.preventDefault(); closeMentions(); return; }
      }
      if (e.key === "Escape" && mode) { e.preventDefault(); modeCancel.click(); return; }
      // Up arrow in an empty box edits one's last message, as in Slack.
      if (e.key === "ArrowUp" && !ui.composer.value && !mode) {
        const s = state(current);
        const last = [...s.msgs].reverse().find((m) => m.type === "TALK" && !m.deleted && canEdit(m));
        if (last) { e.preventDefault(); startEdit(last); return; }
      }
      // Enter sends, Shift+Enter breaks the line. While an IME composes (Korean
      // input), Enter confirms the syllable and must not send.
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        send();
      }
    });
    ui.composer.addEventListener("input", () => { autosize(); updateMentions(); sendTyping(); });
    ui.composer.addEventListener("blur", () => setTimeout(closeMentions, 150));
    ui.form.addEventListener("submit", (e) => { e.preventDefault(); send(); });

    // ---- scrolling ----
    // stick: the view follows new messages and size changes (keyboard
    // opening on a phone, an iframe resized) while it is at the bottom.
    let stick = true;
    ui.history.addEventListener("scroll", () => {
      stick = nearBottom();
      if (stick) { ui.jump.hidden = true; scheduleRead(); }
      if (ui.history.scrollTop < LOAD_OLDER_PX) loadOlder();
    }, { passive: true });
    if (window.ResizeObserver) new ResizeObserver(() => { if (stick) scrollToBottom(); }).observe(ui.history);
    ui.jump.addEventListener("click", () => { scrollToBottom(); scheduleRead(); ui.composer.focus(); });
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) return;
      scheduleRead();
      refreshRooms();
    });
    // The room list also changes without us (new rooms, DMs, invitations):
    // refresh it now and then, and when the tab comes back.
    let lastRoomsRefresh = Date.now();
    function refreshRooms() {
      if (Date.now() - lastRoomsRefresh < ROOMS_REFRESH_MIN_MS) return;
      lastRoomsRefresh = Date.now();
      loadRooms().catch(() => {});
    }
    setInterval(() => { if (!document.hidden) refreshRooms(); }, ROOMS_REFRESH_MS);

    // ---- join / leave ----
    if (ui.join) ui.join.addEventListener("click", async () => {
      const id = current;
      leaving.delete(id); // from now on, a LEAVE of ours is a removal again
      try {
        await api("POST", "/api/rooms/" + id + "/join"); // the server posts the ENTER line
        await loadRooms();
        openRoom(id);
      } catch (ex) { toast(ex.message); }
    });
    if (ui.leave) ui.leave.addEventListener("click", async () => {
      const id = current;
      leaving.add(id);
      try {
        await api("POST", "/api/rooms/" + id + "/leave"); // the server posts the LEAVE line
        const sub = subs.get(roomDest(id));
        if (sub) { try { sub.unsubscribe(); } catch (_) { /* gone */ } subs.delete(roomDest(id)); }
        states.delete(id);
        await loadRooms();
        location.hash = "";
        openRoom(0);
      } catch (ex) { toast(ex.message); }
    });


    // ---- members of the open room ----
    // The header's button shows how many; its dialog lists who is in the
    // room and who is online, lets the room's owner or an administrator
    // remove people, and members of a private room add people by name,
    // with suggestions as they type. ENTER and LEAVE messages and
    // presence keep it current for everyone who has it open.
    const mem = {
      toggle: byTestId("members-toggle"),
      count: byTestId("member-count"),
      dialog: byTestId("members-dialog"),
      title: byTestId("members-title"),
      list: byTestId("member-list"),
      addForm: byTestId("member-add-form"),
      input: byTestId("member-add-input"),
      suggestions: byTestId("member-suggestions"),
      error: byTestId("member-error"),
    };
    let members = [];          // of membersFor, from GET /api/rooms/{id}/members
    let membersFor = 0;
    let presence = new Set();  // usernames online in the open room (its /presence)
    let membersTimer = 0;
    let suggestItems = [];
    let suggestIndex = 0;
    const leaving = new Set(); // rooms this page asked to leave: their LEAVE is no surprise
    const MEMBERS_REFRESH_MS = 250; // gathers a burst of ENTER/LEAVE into one GET
    const SUGGEST_MAX = 8;

    async function loadMembers(id) {
      let ms;
      try { ms = list(await api("GET", "/api/rooms/" + id + "/members"), "members"); } catch (_) { return; }
      if (id !== current) return;
      members = ms;
      membersFor = id;
      for (const m of ms) if (!users.has(m.username)) users.set(m.username, { username: m.username, displayName: m.displayName });
      renderMembers();
    }
    function scheduleMembers() {
      clearTimeout(membersTimer);
      membersTimer = setTimeout(() => { if (current) loadMembers(current); }, MEMBERS_REFRESH_MS);
    }
    function canManage(r) {
      return !!(me && r && r.kind !== "dm" && (me.isAdmin || (r.createdBy && r.createdBy === me.id)));
    }
    function renderMembers() {
      if (!mem.toggle) return;
      const r = rooms.get(current);
      const ready = membersFor === current && current !== 0;
      mem.count.textContent = ready ? String(members.length) : "";
      mem.toggle.setAttribute("aria-label", ready ? t("members.count", { n: members.length }) : t("members.title"));
      if (!mem.dialog.open) return;
      mem.title.textContent = r ? t("members.of", { room: (r.kind === "dm" ? "@" : "#") + roomLabel(r) }) : t("members.title");
      const manage = canManage(r);
      const sorted = [...members].sort((a, b) => (presence.has(b.username) - presence.has(a.username)) ||
        String(a.displayName || a.username).localeCompare(String(b.displayName || b.username), lang));
      mem.list.replaceChildren(...sorted.map((m) => {
        const online = presence.has(m.username);
        const li = el("li", { class: "member" + (online ? " online" : ""), "data-testid": "member", "data-username": m.username, "data-online": online ? "true" : "false" },
          el("span", { class: "presence-dot", "aria-hidden": "true" }),
          el("span", { class: "member-name", "data-testid": "member-name", text: (m.displayName || m.username) + (me && m.username === me.username ? " (" + t("you") + ")" : "") }),
          el("span", { class: "member-handle", text: "@" + m.username }),
          el("span", { class: "visually-hidden", text: online ? t("members.online") : "" }));
        if (m.owner) li.append(el("span", { class: "member-badge", "data-testid": "member-owner", text: t("members.owner") }));
        else if (m.isAdmin) li.append(el("span", { class: "member-badge", text: t("members.admin") }));
        if (manage && me && m.username !== me.username) {
          const b = el("button", { type: "button", class: "secondary member-remove", "data-testid": "member-remove", "aria-label": t("members.removeLabel", { name: m.displayName || m.username }), text: t("members.remove") });
          b.addEventListener("click", () => {
            // A second click within a few seconds confirms, as for deleting a message.
            if (b.dataset.confirm === "1") { removeMember(m.username); return; }
            b.dataset.confirm = "1";
            b.textContent = t("members.confirmRemove");
            setTimeout(() => { if (b.isConnected) { b.dataset.confirm = ""; b.textContent = t("members.remove"); } }, CONFIRM_MS);
          });
          li.append(b);
        }
        return li;
      }));
      mem.addForm.hidden = !(r && r.kind === "private" && r.member && !r.archived);
    }
    async function removeMember(username) {
      const id = current;
      try {
        await api("DELETE", "/api/rooms/" + id + "/members/" + encodeURIComponent(username));
      } catch (ex) { showMemberError(ex.message); return; }
      loadMembers(id);
    }
    async function addMember(username) {
      const id = current;
      closeSuggestions();
      try {
        await api("POST", "/api/rooms/" + id + "/members", { username: username });
      } catch (ex) { showMemberError(ex.message); return; }
      mem.input.value = "";
      mem.error.hidden = true;
      loadMembers(id);
    }
    function showMemberError(text) {
      mem.error.textContent = text;
      mem.error.hidden = false;
    }
    function updateSuggestions() {
      const q = mem.input.value.trim().toLowerCase().replace(/^@/, "");
      if (!q) { closeSuggestions(); return; }
      const inRoom = new Set(members.map((m) => m.username));
      suggestItems = [...users.values()]
        .filter((u) => !inRoom.has(u.username) && !u.isGuest &&
          (u.username.toLowerCase().includes(q) || String(u.displayName || "").toLowerCase().includes(q)))
        .sort((a, b) => (b.username.toLowerCase().startsWith(q) - a.username.toLowerCase().startsWith(q)) || a.username.localeCompare(b.username))
        .slice(0, SUGGEST_MAX);
      suggestIndex = Math.min(suggestIndex, Math.max(0, suggestItems.length - 1));
      if (suggestItems.length === 0) {
        mem.suggestions.replaceChildren(el("li", { class: "suggest-none", "data-testid": "member-no-match", text: t("members.none") }));
      } else {
        mem.suggestions.replaceChildren(...suggestItems.map((u, i) => {
          const li = el("li", { role: "option", id: "member-suggest-" + i, "data-testid": "member-suggestion", "data-username": u.username, "aria-selected": i === suggestIndex ? "true" : "false" },
            el("strong", { text: u.displayName || u.username }), " @" + u.username);
          li.addEventListener("mousedown", (e) => { e.preventDefault(); addMember(u.username); });
          return li;
        }));
        mem.input.setAttribute("aria-activedescendant", "member-suggest-" + suggestIndex);
      }
      mem.suggestions.hidden = false;
      mem.input.setAttribute("aria-expanded", "true");
    }
    function closeSuggestions() {
      suggestItems = [];
      suggestIndex = 0;
      mem.suggestions.hidden = true;
      mem.input.setAttribute("aria-expanded", "false");
      mem.input.removeAttribute("aria-activedescendant");
    }
    if (mem.toggle && !embed) {
      mem.toggle.addEventListener("click", async () => {
        mem.error.hidden = true;
        mem.input.value = "";
        closeSuggestions();
        mem.dialog.showModal();
        renderMembers();
        loadMembers(current);
        loadUsers().then(() => { if (mem.dialog.open && mem.input.value) updateSuggestions(); });
      });
      mem.input.addEventListener("input", updateSuggestions);
      mem.input.addEventListener("keydown", (e) => {
        if (mem.suggestions.hidden || suggestItems.length === 0) return;
        if (e.key === "ArrowDown" || e.key === "ArrowUp") {
          e.preventDefault();
          suggestIndex = (suggestIndex + (e.key === "ArrowDown" ? 1 : suggestItems.length - 1)) % suggestItems.length;
          updateSuggestions();
        } else if (e.key === "Escape") {
          e.preventDefault();
          e.stopPropagation(); // closes the list, not the dialog
          closeSuggestions();
        }
      });
      mem.addForm.addEventListener("submit", (e) => {
        e.preventDefault();
        const pick = suggestItems[suggestIndex];
        if (pick && !e.isComposing) addMember(pick.username);
      });
    }

    // accessEnded takes the page out of a room it may no longer read: we
    // were removed (or left, in another tab). Its subscription and messages
    // go; if it is open, the page leaves it and says why.
    function accessEnded(id, reason) {
      const self = leaving.has(id);
      const r = rooms.get(id);
      const label = r ? (r.kind === "dm" ? "@" : "#") + roomLabel(r) : "#" + id;
      const sub = subs.get(roomDest(id));
      if (sub) { try { sub.unsubscribe(); } catch (_) { /* connection gone */ } subs.delete(roomDest(id)); }
      states.delete(id);
      if (r) {
        r.member = false;
        r.unread = 0;
        if (r.kind !== "public") rooms.delete(id);
      }
      if (id === current) {
        if (mem.dialog && mem.dialog.open) mem.dialog.close();
        if (!embed) history.replaceState(null, "", location.pathname + location.search);
        openRoom(0);
        if (!self) {
          ui.empty.textContent = t(reason === "left" ? "access.left" : "access.removed", { room: label });
          ui.empty.dataset.reason = reason === "left" ? "left" : "removed";
        }
      } else if (!self) {
        toast(t(reason === "left" ? "access.left" : "access.removed", { room: label }));
      }
      renderRoomList();
      loadRooms().catch(() => {});
    }

    // ---- sidebar, dialogs, search (not on the embed page) ----
    if (!embed) {
      ui.drawer.addEventListener("click", () => setDrawer(!document.body.classList.contains("drawer-open")));
      ui.scrim.addEventListener("click", () => setDrawer(false));
      document.addEventListener("keydown", (e) => {
        if (e.key === "Escape" && document.body.classList.contains("drawer-open")) { setDrawer(false); ui.drawer.focus(); }
      });
      window.addEventListener("hashchange", () => openRoom(roomFromHash()));
      byTestId("logout").addEventListener("click", async () => {
        try { await api("POST", "/api/logout"); } catch (_) { /* signed out anyway */ }
        location.assign("/login");
      });
      initDialogs();
      initSearch();
    }

    function initDialogs() {
      for (const d of document.querySelectorAll("dialog")) {
        for (const b of d.querySelectorAll("[data-close]")) b.addEventListener("click", () => d.close());
      }
      const roomDialog = byTestId("new-room-dialog");
      const roomForm = byTestId("new-room-form");
      const roomErr = byTestId("new-room-error");
      byTestId("new-room").addEventListener("click", () => { roomForm.reset(); roomErr.hidden = true; roomDialog.showModal(); });
      roomForm.addEventListener("submit", async (e) => {
        e.preventDefault();
        roomErr.hidden = true;
        try {
          const r = await api("POST", "/api/rooms", {
            name: byTestId("room-name").value.trim(),
            topic: byTestId("room-topic-input").value.trim(),
            kind: byTestId("room-private").checked ? "private" : "public",
            private: byTestId("room-private").checked,
          });
          roomDialog.close();
          await loadRooms();
          if (r && r.id) { subscribeRoom(r.id); location.hash = "room-" + r.id; }
        } catch (ex) { roomErr.textContent = ex.message; roomErr.hidden = false; }
      });
      const dmDialog = byTestId("new-dm-dialog");
      const dmForm = byTestId("new-dm-form");
      const dmErr = byTestId("new-dm-error");
      const dmUser = byTestId("dm-user");
      byTestId("new-dm").addEventListener("click", async () => {
        dmErr.hidden = true;
        await loadUsers();
        const others = [...users.values()].filter((u) => !me || u.username !== me.username)
          .sort((a, b) => String(a.displayName || a.username).localeCompare(String(b.displayName || b.username), lang));
        dmUser.replaceChildren(...others.map((u) => el("option", { value: u.username, text: (u.displayName || u.username) + " (@" + u.username + ")" })));
        if (others.length === 0) { dmErr.textContent = t("dm.nobody"); dmErr.hidden = false; }
        dmDialog.showModal();
      });
      dmForm.addEventListener("submit", async (e) => {
        e.preventDefault();
        if (!dmUser.value) return;
        try {
          const r = await api("POST", "/api/dm/" + encodeURIComponent(dmUser.value));
          dmDialog.close();
          await loadRooms();
          if (r && r.id) { subscribeRoom(r.id); location.hash = "room-" + r.id; }
        } catch (ex) { dmErr.textContent = ex.message; dmErr.hidden = false; }
      });
    }

    function initSearch() {
      const form = byTestId("search-form");
      const input = byTestId("search-input");
      const panel = byTestId("search-results");
      const out = byTestId("search-list");
      byTestId("close-search").addEventListener("click", () => { panel.hidden = true; input.focus(); });
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        const q = input.value.trim();
        if (!q) return;
        let hits;
        try { hits = list(await api("GET", "/api/search?q=" + encodeURIComponent(q)), "results"); } catch (ex) { toast(ex.message); return; }
        out.replaceChildren();
        if (hits.length === 0) out.append(el("li", { "data-testid": "search-none", text: t("search.none") }));
        for (const h of hits) {
          const r = rooms.get(h.roomId);
          const when = new Date(h.createdAt);
          const text = el("span", { class: "search-text" });
          appendText(text, h.message);
          const b = el("button", { type: "button", "data-testid": "search-hit" },
            el("span", { class: "search-meta", text: [r ? roomLabel(r) : h.roomName || "#" + h.roomId, senderName(h), isNaN(when) ? "" : fullFmt.format(when)].filter(Boolean).join(" · ") }),
            text);
          b.addEventListener("click", () => jumpTo(h.roomId, h.id));
          out.append(el("li", null, b));
        }
        panel.hidden = false;
        setDrawer(false);
      });
    }
    // jumpTo opens a room and shows one message, loading older pages until it
    // is there (the pages stay contiguous, so resuming stays gap-free).
    async function jumpTo(roomId, msgId) {
      location.hash = "room-" + roomId;
      openRoom(roomId);
      const s = state(roomId);
      for (let i = 0; i < SEARCH_JUMP_PAGES; i++) {
        if (!s.loaded) await loadLatest(roomId);
        if (s.ids.has(msgId) || !s.hasMore || current !== roomId) break;
        await loadOlder();
      }
      const n = ui.messages.querySelector('[data-id="' + msgId + '"]');
      if (n) {
        n.classList.add("highlight");
        n.scrollIntoView({ block: "center" });
        setTimeout(() => n.classList.remove("highlight"), 3000);
      }
    }

    // ---- start ----
    setConn(navigator.onLine === false ? "offline" : "connecting");
    autosize();
    (async () => {
      try { await Promise.all([loadRooms(), loadUsers()]); } catch (ex) { toast(ex.message); }
      let first = embed ? boot.roomId : roomFromHash();
      if (!first && !embed) {
        const last = Number(storage.get(LAST_ROOM_KEY));
        const pick = (rooms.get(last) && rooms.get(last).member && last) ||
          ([...rooms.values()].find((r) => r.member && !r.archived) || {}).id || 0;
        if (pick) { history.replaceState(null, "", "#room-" + pick); first = pick; }
      }
      openRoom(first);
      connect();
    })();
  }

  // ---- page dispatch ----
  switch (boot.page) {
    case "setup": initAuthForm(byTestId("setup-form")); break;
    case "login": initAuthForm(byTestId("login-form")); break;
    case "register": initAuthForm(byTestId("register-form")); break;
    case "settings": initSettings(); break;
    case "admin": initAdmin(); break;
    case "chat": initChat(false); break;
    case "embed": if (boot.user) initChat(true); break;
  }
  // The page's controls exist before this script has wired them; tests (and
  // anything else driving the page) wait for this mark before using them.
  document.documentElement.dataset.ready = "1";
})();
