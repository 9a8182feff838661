// The chat page: POST ask, render the answer with the sources it cites, grouped by article. One
// conversation per tab: a random id kept in sessionStorage goes with every question, so the server
// can read a follow-up with the question before it; "New conversation" starts another.
// All text from the server or the person goes into the page through textContent / text nodes,
// never innerHTML, so an article or a question can never inject markup.
"use strict";

(() => {
  // One table per language (the CLI and Telegram share bot/labels.py; its words are reused here). An
  // answer's own labels follow its `language` (the server decides it from the question); the page
  // around the answers follows the latest answer, and the browser's language before that.
  const LABELS = {
    en: {
      connecting: "Connecting…",
      newConversation: "New conversation",
      newConversationTitle: "Forget the earlier questions: the next one is read on its own",
      apiKey: "API key",
      apiDocs: "API docs",
      keyExplain: "This server needs an API key. Paste it here; it is kept in this browser only.",
      saveKey: "Save key",
      forgetKey: "Forget",
      examplesLabel: "Example questions",
      examplesIntro: "Ask anything about the indexed articles, in English or Vietnamese (with or without accents). Try:",
      yourQuestion: "Your question",
      placeholder: "Ask about the articles…",
      ask: "Ask",
      hint: "Enter sends · Shift+Enter adds a line",
      characters: "characters",
      counterTitle: "Characters used / the most the server takes",
      tooLong: (used, limit) => `This question is ${used} characters long; the server takes at most ${limit}. Shorten it to send it.`,
      status: (r, mode) => `${r.article_count} articles, ${r.passage_count} passages · ${mode} search · index ${r.build_id}`,
      modes: { hybrid: "hybrid", lexical: "lexical" },
      searching: "Searching the articles…",
      network: "Could not reach the server. Check your connection and try again.",
      needsKey: "This server needs an API key.",
      enterKey: "Enter the key above.",
      serverProblem: (code) => `The server had a problem (HTTP ${code}). Try again in a moment.`,
      requestFailed: (code) => `The request failed (HTTP ${code}).`,
      notFoundTip: "Tip: try other words, or ask about something the articles cover.",
      context: "Read with your earlier question",
      sources: "Sources",
      paragraph: (p) => `paragraph ${p}`,
      alsoRetrieved: (k) => `Also retrieved (${k})`,
      alsoRetrievedNote: "Passages the search found that the answer does not cite.",
      alsoPublished: "Also published by",
      details: "Details",
      passageMeta: (p) => `article ${p.article_id} · characters ${p.start}–${p.end} · score ${score(p.score)}`,
      answerMeta: (a, mode) => `${mode} search · ${Math.round(a.took_ms)} ms` + (a.build_id ? ` · index ${a.build_id}` : ""),
      copy: "Copy",
      copyTitle: "Copy the answer with its sources",
      copied: "Copied",
      copyFailed: "Could not copy: select the text and copy it yourself.",
      feedback: "Was this answer helpful?",
      helpful: "Helpful",
      notHelpful: "Not helpful",
      feedbackThanks: "Thanks for the feedback!",
      feedbackFailed: "Feedback not sent. Try again in a moment.",
      feedbackUnknown: "Feedback not sent: the server no longer remembers this answer. Ask again to vote.",
    },
    vi: {
      connecting: "Đang kết nối…",
      newConversation: "Cuộc trò chuyện mới",
      newConversationTitle: "Quên các câu hỏi trước: câu tiếp theo được đọc riêng",
      apiKey: "Khóa API",
      apiDocs: "Tài liệu API",
      keyExplain: "Máy chủ này cần khóa API. Dán khóa vào đây; khóa chỉ được lưu trong trình duyệt này.",
      saveKey: "Lưu khóa",
      forgetKey: "Xóa khóa",
      examplesLabel: "Câu hỏi mẫu",
      examplesIntro: "Hỏi bất cứ điều gì về các bài báo đã có, bằng tiếng Việt (có dấu hoặc không dấu) hoặc tiếng Anh. Thử:",
      yourQuestion: "Câu hỏi của bạn",
      placeholder: "Hỏi về các bài báo…",
      ask: "Hỏi",
      hint: "Enter để gửi · Shift+Enter để xuống dòng",
      characters: "ký tự",
      counterTitle: "Số ký tự đã nhập / số ký tự tối đa máy chủ nhận",
      tooLong: (used, limit) => `Câu hỏi dài ${used} ký tự; máy chủ chỉ nhận tối đa ${limit} ký tự. Hãy rút gọn để gửi.`,
      status: (r, mode) => `${r.article_count} bài báo, ${r.passage_count} đoạn · tìm kiếm ${mode} · chỉ mục ${r.build_id}`,
      modes: { hybrid: "kết hợp", lexical: "từ khóa" },
      searching: "Đang tìm trong các bài báo…",
      network: "Không kết nối được máy chủ. Hãy kiểm tra kết nối rồi thử lại.",
      needsKey: "Máy chủ này cần khóa API.",
      enterKey: "Hãy nhập khóa ở trên.",
      serverProblem: (code) => `Máy chủ gặp sự cố (HTTP ${code}). Hãy thử lại sau giây lát.`,
      requestFailed: (code) => `Yêu cầu không thành công (HTTP ${code}).`,
      notFoundTip: "Gợi ý: thử dùng từ khác, hoặc hỏi về điều các bài báo có nói đến.",
      context: "Đọc cùng câu hỏi trước của bạn",
      sources: "Nguồn",
      paragraph: (p) => `đoạn ${p}`,
      alsoRetrieved: (k) => `Cũng tìm thấy (${k})`,
      alsoRetrievedNote: "Các đoạn tìm được nhưng câu trả lời không trích dẫn.",
      alsoPublished: "Cũng đăng trên",
      details: "Chi tiết",
      passageMeta: (p) => `bài ${p.article_id} · ký tự ${p.start}–${p.end} · điểm ${score(p.score)}`,
      answerMeta: (a, mode) => `tìm kiếm ${mode} · ${Math.round(a.took_ms)} ms` + (a.build_id ? ` · chỉ mục ${a.build_id}` : ""),
      copy: "Sao chép",
      copyTitle: "Sao chép câu trả lời cùng các nguồn",
      copied: "Đã sao chép",
      copyFailed: "Không sao chép được: hãy tự chọn và sao chép văn bản.",
      feedback: "Câu trả lời này có hữu ích không?",
      helpful: "Hữu ích",
      notHelpful: "Không hữu ích",
      feedbackThanks: "Cảm ơn bạn đã góp ý!",
      feedbackFailed: "Chưa gửi được góp ý. Hãy thử lại sau giây lát.",
      feedbackUnknown: "Chưa gửi được góp ý: máy chủ không còn nhớ câu trả lời này. Hãy hỏi lại để đánh giá.",
    },
  };

  const KEY_STORAGE = "newsqa.apiKey";
  const CONVERSATION_STORAGE = "newsqa.conversation";
  const CONVERSATION_ID = /^[A-Za-z0-9_-]{1,64}$/; // what the server takes
  const ANSWER_ID = /^[0-9a-f]{32}$/; // what POST /feedback takes
  const CONTEXT_CHARS = 120; // of the earlier question, on the line above a follow-up's answer
  const NEAR_LIMIT = 0.9; // the counter warns from this share of the limit on
  const $ = (id) => document.getElementById(id);
  const log = $("log");
  const form = $("ask-form");
  const input = $("question");
  const send = $("send");
  const counter = $("counter");
  const composerMessage = $("composer-message");
  const statusLine = $("status");
  const keyPanel = $("key-panel");
  // The server's own limit, rendered into the page by page.py; 1000 (its default) if the page was
  // served some other way.
  const served = Number(document.body.dataset.maxQuestionChars);
  const MAX_CHARS = Number.isInteger(served) && served > 0 ? served : 1000;
  let answers = 0;
  let busy = false;

  // Letters only Vietnamese uses: enough to tag text lang="vi" for fonts, hyphenation and screen readers.
  const VIETNAMESE = /[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]/i;

  const languageOf = (code) => (code === "vi" ? "vi" : "en");
  let uiLanguage = languageOf(String(navigator.language || "").toLowerCase().startsWith("vi") ? "vi" : "en");
  const ui = () => LABELS[uiLanguage];
  const score = (value) => (typeof value === "number" ? value.toFixed(3) : String(value));
  const modeName = (L, mode) => L.modes[mode] || String(mode);

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

  // -- the page around the answers ------------------------------------------------------------

  let statusResult = null; // the last /readyz outcome, kept to re-say it in another language

  function applyLanguage(language) {
    uiLanguage = languageOf(language);
    const L = ui();
    document.documentElement.lang = uiLanguage;
    for (const node of document.querySelectorAll("[data-label]")) node.textContent = L[node.dataset.label];
    for (const [attr, key] of [["placeholder", "labelPlaceholder"], ["title", "labelTitle"], ["aria-label", "labelAriaLabel"]]) {
      for (const node of document.querySelectorAll(`[data-label-${attr}]`)) node.setAttribute(attr, L[node.dataset[key]]);
    }
    counter.title = L.counterTitle;
    updateCounter();
    showStatus();
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
    const L = ui();
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    if (sessionKey) headers.Authorization = "Bearer " + sessionKey;
    let response;
    try {
      response = await fetch(path, { ...options, headers });
    } catch {
      return { ok: false, kind: "network", message: L.network };
    }
    let body = null;
    try { body = await response.json(); } catch { body = null; }
    const said = body && typeof body.error === "string" ? body.error : "";
    const code = body && typeof body.code === "string" ? body.code : "";
    if (response.ok && body) return { ok: true, body };
    if (response.status === 401) {
      showKeyPanel(true);
      return { ok: false, kind: "auth", message: (said || L.needsKey) + " " + L.enterKey };
    }
    if (response.status >= 500 && response.status !== 503) {
      return { ok: false, kind: "server", message: L.serverProblem(response.status) };
    }
    return { ok: false, kind: response.status === 503 ? "unavailable" : "request", code, message: said || L.requestFailed(response.status) };
  }

  function showStatus() {
    if (!statusResult) {
      statusLine.textContent = ui().connecting;
      return;
    }
    statusLine.classList.toggle("bad", !statusResult.ok);
    statusLine.classList.toggle("ready", statusResult.ok);
    if (!statusResult.ok) {
      statusLine.textContent = statusResult.message;
      return;
    }
    const r = statusResult.body;
    statusLine.textContent = ui().status(r, modeName(ui(), r.mode)) + (r.notice ? ` · ${r.notice}` : "");
  }

  async function refreshStatus() {
    statusResult = await call("readyz");
    showStatus();
    if (!statusResult.ok && (statusResult.kind === "unavailable" || statusResult.kind === "network")) {
      setTimeout(refreshStatus, 5000);
    }
  }

  // -- the question box ------------------------------------------------------------------------

  // Code points, as the server counts them (a JS string's length counts UTF-16 units), of what is sent.
  const questionLength = () => Array.from(input.value.trim()).length;

  function composerSays(message) {
    composerMessage.textContent = message;
    composerMessage.hidden = !message;
  }

  function updateCounter() {
    const used = questionLength();
    const over = used > MAX_CHARS;
    counter.replaceChildren(`${used} / ${MAX_CHARS}`, el("span", { class: "visually-hidden" }, ` ${ui().characters}`));
    counter.classList.toggle("near", !over && used >= MAX_CHARS * NEAR_LIMIT);
    counter.classList.toggle("over", over);
    input.setAttribute("aria-invalid", String(over));
    if (!over) composerSays("");
  }

  // -- answers ---------------------------------------------------------------------------------

  const reducedMotion = () => window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  // Scroll so `item` shows above the composer, which sits over the bottom of the viewport (sticky):
  // scrollIntoView would tuck the answer's end under it. An answer taller than the room left shows
  // from its top.
  function bringIntoView(item) {
    const margin = 8;
    const rect = item.getBoundingClientRect();
    const floor = Math.min(window.innerHeight, form.getBoundingClientRect().top) - margin;
    let delta = 0;
    if (rect.height > floor - margin || rect.top < margin) delta = rect.top - margin;
    else if (rect.bottom > floor) delta = rect.bottom - floor;
    if (delta) window.scrollBy({ top: delta, behavior: reducedMotion() ? "auto" : "smooth" });
  }

  function addItem(kind, ...children) {
    const item = el("li", { class: `msg ${kind}` }, ...children);
    log.append(item);
    bringIntoView(item);
    return item;
  }

  function showSource(id) {
    const target = document.getElementById(id);
    if (!target) return;
    target.scrollIntoView({ block: "nearest", behavior: reducedMotion() ? "auto" : "smooth" });
    target.focus({ preventScroll: true });
    // Restart the flash when the same mark is followed twice.
    target.classList.remove("flash");
    void target.offsetWidth;
    target.classList.add("flash");
  }

  // The answer's "[n]" marks become links to source n; everything else stays plain text.
  function answerText(answer, prefix) {
    const p = tagLanguage(el("p", { class: "answer-text" }), answer.answer);
    const known = new Set(answer.citations.map((c) => c.n));
    for (const part of answer.answer.split(/(\[\d+\])/)) {
      const mark = /^\[(\d+)\]$/.exec(part);
      if (mark && known.has(Number(mark[1]))) {
        const id = `${prefix}-${mark[1]}`;
        const link = el("a", { href: `#${id}`, class: "mark" }, part);
        link.addEventListener("click", (event) => { event.preventDefault(); showSource(id); });
        p.append(link);
      } else {
        p.append(part);
      }
    }
    return p;
  }

  // Sorted, clamped, non-overlapping [start, end) ranges in code points of a text `size` long.
  function cleanRanges(ranges, size) {
    const clean = [];
    for (const range of Array.isArray(ranges) ? ranges : []) {
      if (!Array.isArray(range) || range.length !== 2) continue;
      const start = Math.max(0, Math.min(size, Number(range[0]) || 0));
      const end = Math.max(start, Math.min(size, Number(range[1]) || 0));
      if (end > start) clean.push([start, end]);
    }
    clean.sort((a, b) => a[0] - b[0]);
    const merged = [];
    for (const range of clean) {
      const last = merged[merged.length - 1];
      if (last && range[0] <= last[1]) last[1] = Math.max(last[1], range[1]);
      else merged.push(range);
    }
    return merged;
  }

  // `node` gets `text` with the code-point `ranges` in <mark>: the sentences the answer takes.
  function appendMarked(node, text, ranges) {
    const chars = Array.from(text); // offsets from the server count code points, not UTF-16 units
    let at = 0;
    for (const [start, end] of cleanRanges(ranges, chars.length)) {
      if (start > at) node.append(chars.slice(at, start).join(""));
      node.append(el("mark", {}, chars.slice(start, end).join("")));
      at = end;
    }
    node.append(chars.slice(at).join(""));
    return node;
  }

  // The quote marks the cited sentences too: the server gives their offsets in the passage, so
  // they are found again in the quote, which holds them whole between a few words of context.
  function quoteRanges(quote, c) {
    const chars = Array.from(c.text || "");
    const quoteChars = Array.from(quote);
    const ranges = [];
    for (const [start, end] of cleanRanges(c.highlights, chars.length)) {
      const sentence = chars.slice(start, end).join("").trim();
      const at = sentence ? quote.indexOf(sentence) : -1;
      if (at < 0) continue;
      const from = Array.from(quote.slice(0, at)).length;
      ranges.push([from, Math.min(quoteChars.length, from + Array.from(sentence).length)]);
    }
    return ranges;
  }

  // Passages grouped by article, in the order their articles first come, each article's title once.
  function byArticle(passages) {
    const groups = new Map();
    for (const p of passages) {
      if (!groups.has(p.article_id)) groups.set(p.article_id, { title: p.title, first: p, items: [] });
      groups.get(p.article_id).items.push(p);
    }
    return [...groups.values()];
  }

  // `url` when the page may link to it: http(s) only, so a story's URL can never run a script
  // (javascript:, data:); null otherwise.
  function webLink(url) {
    if (typeof url !== "string" || !url) return null;
    try {
      const parsed = new URL(url);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch {
      return null;
    }
  }

  // A link that opens the story on its site in a new tab, which gets no hold on this page.
  function storyLink(url, text, attrs = {}) {
    return el("a", { ...attrs, href: url, target: "_blank", rel: "noopener noreferrer" }, text);
  }

  // The article's title, a link to the story when it has a URL.
  function articleTitle(group) {
    const title = tagLanguage(el("p", { class: "article-title" }), group.title);
    const link = webLink(group.first.url);
    title.append(link ? storyLink(link, group.title, { class: "story" }) : group.title);
    return title;
  }

  // "VnExpress · 2024-03-02": who published the story and on what day, when known (a file says neither).
  function articleByline(p) {
    const day = typeof p.published === "string" ? p.published.slice(0, 10) : "";
    const parts = [typeof p.source === "string" ? p.source : "", day].filter(Boolean);
    return parts.length ? el("p", { class: "byline" }, parts.join(" · ")) : null;
  }

  // The other sites that ran the same story, each a link to its copy.
  function alsoPublished(p, L) {
    const copies = Array.isArray(p.also_published) ? p.also_published : [];
    const named = new Map(); // one site that ran it twice is named once
    for (const copy of copies) {
      const link = webLink(copy.url);
      const host = link ? new URL(link).hostname : "";
      const name = (typeof copy.source === "string" && copy.source) || host || String(copy.article_id);
      if (!named.has(name)) named.set(name, link);
    }
    if (!named.size) return null;
    const line = el("p", { class: "also-published" }, `${L.alsoPublished}: `);
    [...named].forEach(([name, link], i) => {
      if (i) line.append(", ");
      line.append(link ? storyLink(link, name) : name);
    });
    return line;
  }

  function articleList(passages, item, L) {
    return el(
      "ol", { class: "articles" },
      ...byArticle(passages).map((group) => el(
        "li", { class: "article" },
        ...[
          articleTitle(group),
          articleByline(group.first),
          el("ol", { class: "passages" }, ...group.items.map(item)),
          alsoPublished(group.first, L),
        ].filter(Boolean),
      )),
    );
  }

  function citedSource(c, prefix, L) {
    const quote = typeof c.quote === "string" && c.quote ? c.quote : c.text;
    return el(
      "li", { id: `${prefix}-${c.n}`, class: "source", tabindex: "-1" },
      el("p", { class: "source-head" }, el("span", { class: "n" }, `[${c.n}]`), " ", el("span", { class: "where" }, L.paragraph(c.paragraph))),
      appendMarked(tagLanguage(el("blockquote", { class: "quote" }), quote), quote, quoteRanges(quote, c)),
      appendMarked(tagLanguage(el("blockquote", { class: "passage detail" }), c.text), c.text, c.highlights),
      el("p", { class: "meta detail" }, L.passageMeta(c)),
    );
  }

  function retrievedPassage(p, L) {
    return el(
      "li", { class: "retrieved" },
      el("p", { class: "source-head" }, el("span", { class: "where" }, L.paragraph(p.paragraph))),
      textEl("blockquote", { class: "passage" }, p.text),
      el("p", { class: "meta detail" }, L.passageMeta(p)),
    );
  }

  function sources(answer, prefix, L) {
    const cited = [...answer.citations].sort((a, b) => a.n - b.n);
    const parts = [];
    if (cited.length) {
      parts.push(el(
        "section", { class: "sources", "aria-label": L.sources },
        el("p", { class: "sources-label" }, L.sources),
        articleList(cited, (c) => citedSource(c, prefix, L), L),
      ));
    }
    const others = Array.isArray(answer.also_retrieved) ? answer.also_retrieved : [];
    if (others.length) {
      parts.push(el(
        "details", { class: "also" },
        el("summary", {}, L.alsoRetrieved(others.length)),
        el("p", { class: "note" }, L.alsoRetrievedNote),
        articleList(others, (p) => retrievedPassage(p, L), L),
      ));
    }
    return parts;
  }

  // The answer and its sources as plain text, numbered as cited: what the copy button copies.
  function plainAnswer(answer, L) {
    const lines = [answer.answer];
    const cited = [...answer.citations].sort((a, b) => a.n - b.n);
    if (cited.length) {
      lines.push("", `${L.sources}:`);
      for (const c of cited) {
        const link = webLink(c.url);
        lines.push(`[${c.n}] ${c.title}, ${L.paragraph(c.paragraph)}: “${c.quote || c.text}”` + (link ? ` ${link}` : ""));
      }
    }
    return lines.join("\n");
  }

  async function copyText(text) {
    // The Clipboard API needs a secure context (https or localhost) and a permission; the page may be
    // served over plain http to another machine, so the old selection copy stays as a fallback.
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch { /* refused: try the fallback */ }
    }
    const area = el("textarea", { class: "offscreen", readonly: "", "aria-hidden": "true", tabindex: "-1" });
    area.value = text;
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch { ok = false; }
    area.remove();
    return ok;
  }

  function copyButton(answer, L, say) {
    const button = el("button", { type: "button", class: "quiet small copy", title: L.copyTitle }, L.copy);
    let reset = 0;
    button.addEventListener("click", async () => {
      const ok = await copyText(plainAnswer(answer, L));
      button.focus(); // the fallback's selection took the focus away
      clearTimeout(reset);
      if (ok) {
        button.textContent = L.copied;
        reset = setTimeout(() => { button.textContent = L.copy; }, 2000);
        say("");
      } else {
        say(L.copyFailed, true);
      }
    });
    return button;
  }

  function detailsButton(item, L) {
    const button = el("button", { type: "button", class: "quiet small details-toggle", "aria-expanded": "false" }, L.details);
    button.addEventListener("click", () => {
      const show = button.getAttribute("aria-expanded") !== "true";
      button.setAttribute("aria-expanded", String(show));
      item.classList.toggle("show-details", show);
    });
    return button;
  }

  function feedbackButtons(answer, L, say) {
    const up = el("button", { type: "button", class: "quiet small vote", "data-vote": "up", "aria-pressed": "false", "aria-label": L.helpful, title: L.helpful }, "👍");
    const down = el("button", { type: "button", class: "quiet small vote", "data-vote": "down", "aria-pressed": "false", "aria-label": L.notHelpful, title: L.notHelpful }, "👎");
    let sending = false; // not `disabled`: that would take the focus off the button just pressed
    for (const button of [up, down]) {
      button.addEventListener("click", async () => {
        if (sending || button.getAttribute("aria-pressed") === "true") return;
        sending = true;
        const vote = button.dataset.vote;
        const result = await call("feedback", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ answer_id: answer.answer_id, vote }),
        });
        sending = false;
        if (result.ok) {
          up.setAttribute("aria-pressed", String(vote === "up"));
          down.setAttribute("aria-pressed", String(vote === "down"));
          say(L.feedbackThanks);
        } else if (result.kind === "auth") {
          say(result.message, true); // it says where to enter the key
        } else {
          // The server's sentences are long for a line under an answer: a short one of ours instead.
          say(result.code === "unknown_answer" ? L.feedbackUnknown : L.feedbackFailed, true);
        }
      });
    }
    return el("span", { class: "votes", role: "group", "aria-label": L.feedback }, up, down);
  }

  function toolbar(item, answer, L) {
    const message = el("p", { class: "tool-message", role: "status" });
    const say = (text, bad = false) => {
      message.textContent = text;
      message.classList.toggle("bad", bad);
    };
    const tools = el("div", { class: "tools" }, copyButton(answer, L, say));
    if (answer.citations.length || (answer.also_retrieved || []).length) tools.append(detailsButton(item, L));
    if (typeof answer.answer_id === "string" && ANSWER_ID.test(answer.answer_id)) tools.append(feedbackButtons(answer, L, say));
    return [tools, message];
  }

  // "Read with your earlier question: «…»", when the server read this one as a follow-up.
  function contextLine(earlier, L) {
    const shown = earlier.length > CONTEXT_CHARS ? earlier.slice(0, CONTEXT_CHARS - 1) + "…" : earlier;
    return el("p", { class: "context", title: earlier }, `${L.context}: «`, textEl("span", {}, shown), "»");
  }

  function renderAnswer(item, answer) {
    const prefix = `a${++answers}`;
    const language = languageOf(answer.language || uiLanguage);
    const L = LABELS[language];
    answer.citations = Array.isArray(answer.citations) ? answer.citations : [];
    item.replaceChildren();
    item.lang = language;
    item.classList.remove("pending");
    item.removeAttribute("aria-busy");
    if (!answer.found) item.classList.add("not-found");
    if (answer.context_used && typeof answer.context_question === "string") {
      item.append(contextLine(answer.context_question, L));
    }
    item.append(answerText(answer, prefix));
    if (!answer.found) item.append(el("p", { class: "note" }, L.notFoundTip));
    if (answer.notice) item.append(el("p", { class: "note" }, answer.notice));
    item.append(...sources(answer, prefix, L));
    item.append(...toolbar(item, answer, L));
    item.append(el("p", { class: "meta detail" }, L.answerMeta(answer, modeName(L, answer.mode))));
    applyLanguage(language); // the page speaks the language of the latest answer
  }

  function renderError(item, message) {
    item.replaceChildren(el("p", { class: "error-text", role: "alert" }, message));
    item.classList.remove("pending");
    item.classList.add("error");
    item.removeAttribute("aria-busy");
  }

  async function ask(question) {
    const text = question.trim();
    if (!text || busy) return;
    busy = true;
    send.disabled = true;
    $("examples").hidden = true;
    addItem("question", textEl("p", {}, text));
    const item = addItem("answer pending", el("p", { class: "note" }, ui().searching));
    item.setAttribute("aria-busy", "true");
    try {
      const result = await call("ask", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ question: text, conversation_id: conversationId }),
      });
      if (result.ok) renderAnswer(item, result.body);
      else renderError(item, result.message);
    } finally {
      busy = false;
      send.disabled = false;
      bringIntoView(item);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    input.focus(); // stays in the box for the next question (a tap on Ask would take it)
    if (busy || !input.value.trim()) return;
    const used = questionLength();
    if (used > MAX_CHARS) {
      // Refused here, not by a round trip: the box keeps the text to shorten.
      composerSays(ui().tooLong(used, MAX_CHARS));
      return;
    }
    const question = input.value;
    input.value = "";
    updateCounter();
    ask(question);
  });

  input.addEventListener("keydown", (event) => {
    // Enter sends, Shift+Enter breaks the line; never while an input method is composing (Vietnamese IMEs).
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  input.addEventListener("input", updateCounter);

  for (const button of document.querySelectorAll(".example")) {
    button.addEventListener("click", () => {
      input.focus(); // the examples hide once asked: keep the focus somewhere useful
      ask(button.textContent);
    });
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

  applyLanguage(uiLanguage);
  refreshStatus();
})();
