// stompbox Markdown: the safe subset chat messages are shown with (issue 17).
// It builds DOM nodes with createElement and textContent only; no string is
// ever parsed as HTML, so nothing a person typed can become markup or
// script. Entities are not decoded either: "&#106;avascript:" stays text.
//
// Blocks: fenced code (``` … ```, monospace, scrolls sideways, copy
// button), block quotes (> …), lists (- * + or 1. 1)), and everything else
// as one paragraph whose line breaks stay (the message box keeps
// white-space: pre-wrap). Inline: `code`, **bold** / __bold__, *italic* /
// _italic_, ~~strike~~, [text](url), bare http(s) URLs, and @mentions of
// known people.
//
// Links only get an href that the URL parser reads as absolute http:,
// https: or mailto:; anything else (script and data URLs, vbscript, relative
// paths, any spelling of those) is shown as the text it was. The elements
// and attributes it can produce are exactly ALLOWED below; the browser
// suite feeds it the OWASP filter-evasion strings and random input and
// checks the DOM against that list (ui_browser_test.go).
"use strict";
window.StompboxMarkdown = (function () {
  const MAX_DEPTH = 6;      // nesting of quotes and inline spans; deeper stays text (bounds work on hostile input)
  const COPIED_MS = 1500;   // how long the copy button says "copied"
  const LINK_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);

  // ALLOWED is every element the renderer creates, with its attributes.
  const ALLOWED = Object.freeze({
    P: ["class"], STRONG: [], EM: [], DEL: [], CODE: [], PRE: ["class"], BLOCKQUOTE: [],
    UL: [], OL: ["start"], LI: [], A: ["href", "target", "rel", "class"], SPAN: ["class"],
    DIV: ["class", "data-testid"], BUTTON: ["type", "class", "data-testid", "aria-label", "title"],
  });

  function el(tag, cls, text) {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  }

  // safeHref returns the normalised URL if it is absolute http, https or
  // mailto, else null. For http and https only the authority (up to the
  // first / \ ? #) can make a URL invalid: the path, query and fragment are
  // escaped, never refused. So the authority is parsed first, and a long
  // string with a bad host costs its head only, not its whole length (the
  // inline scanner may try many starts inside one long token).
  function safeHref(raw) {
    const s = String(raw).trim();
    if (!/^(https?:\/\/|mailto:)/i.test(s)) return null; // no relative URLs, no other schemes
    const head = AUTHORITY.exec(s);
    if (head && head[0].length < s.length) {
      try { new URL(head[0]); } catch (_) { return null; }
    }
    try {
      const u = new URL(s);
      return LINK_PROTOCOLS.has(u.protocol) ? u.href : null;
    } catch (_) {
      return null;
    }
  }
  function link(href, text) {
    const a = el("a");
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.textContent = text;
    return a;
  }

  const AUTHORITY = /^https?:[\/\\]*[^\/\\?#]*/i; // scheme and authority; the parser skips extra slashes
  const NAME_CHAR = /[\p{L}\p{N}._-]/u;
  const URL_HEAD = /https?:\/\//iy;          // a bare URL's start, tested in place (sticky)
  const AUTHORITY_AT = /https?:[\/\\]*[^\/\\?#\s<>"'`]*/iy; // the same, in place, within a bare URL's run
  const URL_CHAR = /[^\s<>"'`]/;            // a bare URL runs while these last
  const URL_TRAIL = ".,;:!?)]}*_~";          // trimmed from a bare URL's end
  const SPACE = /\s/;
  const MENTION_AT = /@[\p{L}\p{N}._-]+/uy;

  // matching pairs each opening character (open) of text with its closing
  // twin (close), as a stack does in one pass: pairs[i] is the index of the
  // twin of the opener at i, or -1. An opener's twin is where the nesting
  // count started at it first returns to zero, which is what a scan from
  // the opener would find; computing all of them at once keeps a text full
  // of unclosed openers ("[](" again and again) linear.
  function matching(text, open, close) {
    const pairs = new Int32Array(text.length).fill(-1);
    const stack = [];
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c === open) stack.push(i);
      else if (c === close && stack.length) pairs[stack.pop()] = i;
    }
    return pairs;
  }
  // spaceAfter[i] is the index of the first white-space character at or
  // after i, or text.length.
  function spacesAfter(text) {
    const out = new Int32Array(text.length + 1);
    out[text.length] = text.length;
    for (let i = text.length - 1; i >= 0; i--) out[i] = SPACE.test(text[i]) ? i : out[i + 1];
    return out;
  }

  // inline appends the inline rendering of text to parent. Every scan is
  // bounded: a span looks for the nearest closing twin, links use the
  // precomputed bracket pairs, and a bare URL's extent is found once per
  // run of URL characters, so the work is linear in the text (times the
  // nesting depth, at most MAX_DEPTH).
  function inline(parent, text, opts, depth) {
    let buf = "";
    const flush = () => { if (buf) { parent.append(document.createTextNode(buf)); buf = ""; } };
    let brackets = null, parens = null, spaces = null; // computed on the first "["
    let runEnd = -1, runTrimmed = -1;                  // the bare-URL run the scan is in
    const badHeads = new Set();                        // URL authorities already refused
    // span wraps the text between a marker and its closing twin, if both
    // are there and the inside is not blank or padded ("2 * 3 * 4" stays).
    const span = (i, mark, tag) => {
      const end = text.indexOf(mark, i + mark.length);
      if (end < 0) return -1;
      const inner = text.slice(i + mark.length, end);
      if (!inner.trim() || inner !== inner.trim()) return -1;
      if (mark[0] === "_" && (NAME_CHAR.test(text[i - 1] || " ") && text[i - 1] !== "_" || NAME_CHAR.test(text[end + mark.length] || " ") && text[end + mark.length] !== "_")) return -1; // snake_case_names stay
      flush();
      const n = el(tag);
      inline(n, inner, opts, depth + 1);
      parent.append(n);
      return end + mark.length;
    };
    // bareURL renders an http(s) URL starting at i, or returns -1. The URL
    // runs to the first white space, < > " ' or `, less trailing
    // punctuation; every start inside one run ends where the run does.
    const bareURL = (i) => {
      URL_HEAD.lastIndex = i;
      if (!URL_HEAD.test(text)) return -1;
      if (i >= runEnd) {
        runEnd = i;
        while (runEnd < text.length && URL_CHAR.test(text[runEnd])) runEnd++;
        runTrimmed = runEnd;
        while (runTrimmed > i && URL_TRAIL.includes(text[runTrimmed - 1])) runTrimmed--;
      }
      if (runEnd <= URL_HEAD.lastIndex) return -1; // nothing after "://"
      // The authority alone decides whether the URL is valid (safeHref);
      // checking it in place first keeps a bad start cheap in a long run.
      AUTHORITY_AT.lastIndex = i;
      AUTHORITY_AT.test(text);
      const headEnd = Math.min(AUTHORITY_AT.lastIndex, runTrimmed);
      if (headEnd < runTrimmed) {
        const head = text.slice(i, headEnd);
        if (badHeads.has(head)) return -1; // a refused URL throws, which is slow: once per head
        try { new URL(head); } catch (_) { badHeads.add(head); return -1; }
      }
      const tok = text.slice(i, runTrimmed);
      const href = safeHref(tok);
      if (!href) return -1;
      flush();
      parent.append(link(href, tok));
      return runTrimmed;
    };
    let i = 0;
    while (i < text.length) {
      const c = text[i];
      let next = -1;
      if (depth < MAX_DEPTH) {
        if (c === "`") {
          const end = text.indexOf("`", i + 1);
          if (end > i + 1) {
            flush();
            parent.append(el("code", "", text.slice(i + 1, end)));
            next = end + 1;
          }
        } else if (text.startsWith("**", i) || text.startsWith("__", i)) {
          next = span(i, text.slice(i, i + 2), "strong");
        } else if (text.startsWith("~~", i)) {
          next = span(i, "~~", "del");
        } else if (c === "*" || c === "_") {
          next = span(i, c, "em");
        } else if (c === "[") {
          next = mdLink(i);
        } else if ((c === "h" || c === "H") && !NAME_CHAR.test(text[i - 1] || " ")) {
          next = bareURL(i);
        } else if (c === "@" && !NAME_CHAR.test(text[i - 1] || " ")) {
          MENTION_AT.lastIndex = i;
          const m = MENTION_AT.exec(text);
          if (m) {
            const tok = m[0].replace(/\.+$/, ""); // "@bob." ends a sentence
            if (opts.isMention && opts.isMention(tok.slice(1))) {
              flush();
              parent.append(el("span", "mention", tok));
              next = i + tok.length;
            }
          }
        }
      }
      if (next > i) {
        i = next;
      } else {
        buf += c;
        i++;
      }
    }
    flush();

    // mdLink renders [text](url) starting at i, or returns -1. Brackets
    // nest in the text; the URL ends at the first space or unbalanced ")".
    function mdLink(i) {
      if (!brackets) {
        brackets = matching(text, "[", "]");
        parens = matching(text, "(", ")");
        spaces = spacesAfter(text);
      }
      const j = brackets[i];
      if (j < 0 || text[j + 1] !== "(") return -1;
      const k = parens[j + 1];
      if (k < 0 || spaces[j + 2] < k) return -1;
      const label = text.slice(i + 1, j);
      if (!label.trim()) return -1; // shown as typed
      const href = safeHref(text.slice(j + 2, k));
      if (!href) return -1;
      flush();
      const a = link(href, "");
      inlineNoLinks(a, label, opts, depth + 1);
      parent.append(a);
      return k + 1;
    }
  }
  // inlineNoLinks renders a link's label: formatting, but no links inside links.
  function inlineNoLinks(parent, text, opts, depth) {
    inline(parent, text, Object.assign({}, opts, { isMention: null }), depth);
    for (const a of [...parent.querySelectorAll("a")]) a.replaceWith(document.createTextNode(a.textContent));
  }

  const FENCE = /^\s{0,3}```/;
  const QUOTE = /^\s{0,3}> ?/;
  const BULLET = /^\s{0,3}[-*+]\s+/;
  const NUMBER = /^\s{0,3}(\d{1,9})[.)]\s+/;

  // blocks appends the block rendering of text to parent.
  function blocks(parent, text, opts, depth) {
    const lines = text.split("\n");
    let para = [];
    const flushPara = () => {
      // Keep the blank lines inside a paragraph; drop those at its edges,
      // where a block element already separates.
      let a = 0, b = para.length;
      while (a < b && !para[a].trim()) a++;
      while (b > a && !para[b - 1].trim()) b--;
      if (a < b) {
        const p = el("p", "md-p");
        inline(p, para.slice(a, b).join("\n"), opts, depth);
        parent.append(p);
      }
      para = [];
    };
    for (let i = 0; i < lines.length;) {
      const line = lines[i];
      if (FENCE.test(line)) {
        let j = i + 1;
        while (j < lines.length && !FENCE.test(lines[j])) j++;
        flushPara();
        parent.append(codeBlock(lines.slice(i + 1, j).join("\n"), opts));
        i = j + 1;
      } else if (QUOTE.test(line) && depth < MAX_DEPTH) {
        let j = i;
        const inner = [];
        while (j < lines.length && QUOTE.test(lines[j])) inner.push(lines[j++].replace(QUOTE, ""));
        flushPara();
        const q = el("blockquote");
        blocks(q, inner.join("\n"), opts, depth + 1);
        parent.append(q);
        i = j;
      } else if (BULLET.test(line) || NUMBER.test(line)) {
        const ordered = !BULLET.test(line);
        const re = ordered ? NUMBER : BULLET;
        const list = el(ordered ? "ol" : "ul");
        if (ordered) {
          const start = Number(line.match(NUMBER)[1]);
          if (start !== 1) list.setAttribute("start", String(start));
        }
        let j = i;
        while (j < lines.length && re.test(lines[j])) {
          const li = el("li");
          inline(li, lines[j].replace(re, ""), opts, depth);
          list.append(li);
          j++;
        }
        flushPara();
        parent.append(list);
        i = j;
      } else {
        para.push(line);
        i++;
      }
    }
    flushPara();
  }

  // codeBlock is a fenced block: its text as typed, and a copy button.
  function codeBlock(code, opts) {
    const t = opts.t || ((k) => k);
    const box = el("div", "code-block");
    box.setAttribute("data-testid", "code-block");
    const pre = el("pre", "code");
    pre.append(el("code", "", code));
    const b = el("button", "copy-code", t("code.copy"));
    b.type = "button";
    b.setAttribute("data-testid", "copy-code");
    b.setAttribute("aria-label", t("code.copyLabel"));
    b.addEventListener("click", async () => {
      const ok = await copyText(code);
      b.textContent = ok ? t("code.copied") : t("code.copyFailed");
      setTimeout(() => { b.textContent = t("code.copy"); }, COPIED_MS);
    });
    box.append(pre, b);
    return box;
  }

  // copyText puts text on the clipboard: the Clipboard API where the page
  // is a secure context, else a selected off-screen textarea and the older
  // copy command (plain http on an intranet is not a secure context).
  async function copyText(text) {
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
        return true;
      }
    } catch (_) { /* fall back */ }
    const ta = document.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.className = "visually-hidden"; // off-screen but selectable (app.css)
    document.body.append(ta);
    ta.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (_) { ok = false; }
    ta.remove();
    return ok;
  }

  // render replaces parent's children with the rendering of text.
  // opts.isMention(name) says whether @name is a known person; opts.t
  // translates the copy button's texts.
  function render(parent, text, opts) {
    parent.replaceChildren();
    blocks(parent, String(text == null ? "" : text), opts || {}, 0);
  }

  return Object.freeze({ render: render, copyText: copyText, safeHref: safeHref, ALLOWED: ALLOWED });
})();
