// The chat page: POST ask, render the answer with numbered, expandable citations. One conversation
// per tab: a random id kept in sessionStorage goes with every question, so the server can read a
// follow-up with the question before it; "New conversation" starts another.
// All text from the server or the person goes into the page through textContent / text nodes,
// never innerHTML, so an article or a question can never inject markup.
"use strict";

(() => {
  const KEY_STORAGE = "newsqa.apiKey";
  const CONVERSATION_STORAGE = "newsqa.conversation";
  const CONVERSATION_ID = /^[A-Za-z0-9_-]{1,64}$/; // what the server takes
  const CONTEXT_CHARS = 120; // of the earlier question, on the line above a follow-up's answer
  const $ = (id) => document.getElementById(id);
  const log = $("log");
  const form = $("ask-form");
  const input = $("question");
  const send = $("send");
  const statusLine = $("status");
  const keyPanel = $("key-panel");
  let answers = 0;

  // Letters only Vietnamese uses: enough to tag text lang="vi" for fonts, hyphenation and screen readers.
  const VIETNAMESE = /[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]/i;

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (name === "class") node.className = value;
      else node.setAttribute(name, value);
    }
    node.append(...children); // strings become text nodes
    return node;
  }

  function tagLanguage(node, text) {
    if (VIETNAMESE.test(text)) node.lang = "vi";
    node.dir = "auto"; // right-to-left questions read right
    return node;
  }

  // An element holding `text` (as a text node), tagged with the text's language.
  function textEl(tag, attrs, text) {
    return tagLanguage(el(tag, attrs, text), text);
  }

  function storedKey() {
    try { return localStorage.getItem(KEY_STORAGE) || ""; } catch { return ""; }
  }

  function storeKey(value) {
    try {
      if (value) localStorage.setItem(KEY_STORAGE, value);
      else localStorage.removeItem(KEY_STORAGE);
    } catch { /* storage disabled: the key lasts until the page closes */ }
    sessionKey = value;
  }

  let sessionKey = storedKey();

  function newConversationId() {
    // getRandomValues, not randomUUID: the page may be served over plain http to another machine.
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return "c-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function startConversation() {
    conversationId = newConversationId();
    try { sessionStorage.setItem(CONVERSATION_STORAGE, conversationId); } catch { /* lasts until the page closes */ }
  }

  let conversationId = "";
  try { conversationId = sessionStorage.getItem(CONVERSATION_STORAGE) || ""; } catch { conversationId = ""; }
  if (!CONVERSATION_ID.test(conversationId)) startConversation();

  function showKeyPanel(show) {
    keyPanel.hidden = !show;
    if (show) $("key-input").focus();
  }

  // One place that turns every outcome of a request into {ok, body} or {ok: false, message}.
  async function call(path, options = {}) {
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    if (sessionKey) headers.Authorization = "Bearer " + sessionKey;
    let response;
    try {
      response = await fetch(path, { ...options, headers });
    } catch {
      return { ok: false, kind: "network", message: "Could not reach the server. Check your connection and try again." };
    }
    let body = null;
    try { body = await response.json(); } catch { body = null; }
    const said = body && typeof body.error === "string" ? body.error : "";
    if (response.ok && body) return { ok: true, body };
    if (response.status === 401) {
      showKeyPanel(true);
      return { ok: false, kind: "auth", message: (said || "This server needs an API key.") + " Enter the key above." };
    }
    if (response.status >= 500 && response.status !== 503) {
      return { ok: false, kind: "server", message: `The server had a problem (HTTP ${response.status}). Try again in a moment.` };
    }
    return {
      ok: false,
      kind: response.status === 503 ? "unavailable" : "request",
      message: said || `The request failed (HTTP ${response.status}).`,
    };
  }

  async function refreshStatus() {
    const result = await call("readyz");
    statusLine.classList.toggle("bad", !result.ok);
    if (result.ok) {
      const r = result.body;
      statusLine.textContent = `${r.article_count} articles, ${r.passage_count} passages · ${r.mode} search · index ${r.build_id}`;
      if (r.notice) statusLine.textContent += ` · ${r.notice}`;
      return;
    }
    statusLine.textContent = result.message;
    if (result.kind === "unavailable" || result.kind === "network") setTimeout(refreshStatus, 5000);
  }

  function addItem(kind, ...children) {
    const item = el("li", { class: `msg ${kind}` }, ...children);
    log.append(item);
    item.scrollIntoView({ block: "end", behavior: "smooth" });
    return item;
  }

  function openCitation(id) {
    const target = document.getElementById(id);
    if (!target) return;
    target.open = true;
    target.scrollIntoView({ block: "nearest", behavior: "smooth" });
    target.querySelector("summary").focus();
  }

  // The answer's "[n]" marks become links that open citation n; everything else stays plain text.
  function answerText(answer, prefix) {
    const p = tagLanguage(el("p", { class: "answer-text" }), answer.answer);
    const known = new Set(answer.citations.map((c) => c.n));
    for (const part of answer.answer.split(/(\[\d+\])/)) {
      const mark = /^\[(\d+)\]$/.exec(part);
      if (mark && known.has(Number(mark[1]))) {
        const id = `${prefix}-${mark[1]}`;
        const link = el("a", { href: `#${id}`, class: "mark" }, part);
        link.addEventListener("click", (event) => { event.preventDefault(); openCitation(id); });
        p.append(link);
      } else {
        p.append(part);
      }
    }
    return p;
  }

  function citation(c, prefix, citedInAnswer) {
    const summary = el(
      "summary", {},
      el("span", { class: "n" }, `[${c.n}]`), " ",
      textEl("span", { class: "title" }, c.title), " ",
      el("span", { class: "where" }, `· paragraph ${c.paragraph}`),
    );
    const details = el(
      "details", { id: `${prefix}-${c.n}`, class: citedInAnswer ? "cited" : "" },
      summary,
      textEl("blockquote", { class: "passage" }, c.text),
      el("p", { class: "meta" }, `Article ${c.article_id} · characters ${c.start}–${c.end} · score ${c.score.toFixed(3)}`),
    );
    return el("li", {}, details);
  }

  // "Read with your earlier question: «…»", when the server read this one as a follow-up.
  function contextLine(earlier) {
    const shown = earlier.length > CONTEXT_CHARS ? earlier.slice(0, CONTEXT_CHARS - 1) + "…" : earlier;
    return el("p", { class: "context", title: earlier }, "Read with your earlier question: «", textEl("span", {}, shown), "»");
  }

  function renderAnswer(item, answer) {
    const prefix = `a${++answers}`;
    item.replaceChildren();
    item.classList.remove("pending");
    item.removeAttribute("aria-busy");
    if (!answer.found) item.classList.add("not-found");
    if (answer.context_used && typeof answer.context_question === "string") {
      item.append(contextLine(answer.context_question));
    }
    item.append(answerText(answer, prefix));
    if (!answer.found) {
      item.append(el("p", { class: "note" }, "Tip: try other words, or ask about something the articles cover."));
    }
    if (answer.notice) item.append(el("p", { class: "note" }, answer.notice));
    if (answer.citations.length) {
      const marked = new Set([...answer.answer.matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1])));
      item.append(
        el("p", { class: "sources-label" }, answer.found ? "Sources" : "Closest passages"),
        el("ol", { class: "citations" }, ...answer.citations.map((c) => citation(c, prefix, marked.has(c.n)))),
      );
    }
    item.append(el("p", { class: "meta" }, `${answer.mode} search · ${Math.round(answer.took_ms)} ms`));
  }

  function renderError(item, message) {
    item.replaceChildren(el("p", { class: "error-text", role: "alert" }, message));
    item.classList.remove("pending");
    item.classList.add("error");
    item.removeAttribute("aria-busy");
  }

  async function ask(question) {
    const text = question.trim();
    if (!text) {
      input.focus();
      return;
    }
    $("examples").hidden = true;
    addItem("question", textEl("p", {}, text));
    const item = addItem("answer pending", el("p", { class: "note" }, "Searching the articles…"));
    item.setAttribute("aria-busy", "true");
    send.disabled = true;
    try {
      const result = await call("ask", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ question: text, conversation_id: conversationId }),
      });
      if (result.ok) renderAnswer(item, result.body);
      else renderError(item, result.message);
    } finally {
      send.disabled = false;
      item.scrollIntoView({ block: "nearest", behavior: "smooth" });
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = input.value;
    if (question.trim()) input.value = "";
    ask(question);
  });

  input.addEventListener("keydown", (event) => {
    // Enter sends, Shift+Enter breaks the line; never while an input method is composing (Vietnamese IMEs).
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  for (const button of document.querySelectorAll(".example")) {
    button.addEventListener("click", () => ask(button.textContent));
  }

  $("new-conversation").addEventListener("click", () => {
    startConversation();
    log.replaceChildren();
    $("examples").hidden = false;
    input.focus();
  });

  $("key-toggle").addEventListener("click", () => showKeyPanel(keyPanel.hidden));
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    storeKey($("key-input").value.trim());
    $("key-input").value = "";
    showKeyPanel(false);
    refreshStatus();
  });
  $("key-clear").addEventListener("click", () => {
    storeKey("");
    $("key-input").value = "";
    refreshStatus();
  });

  refreshStatus();
})();
