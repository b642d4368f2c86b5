// Sapa web chat: a small vanilla-JS client for the same-origin /api/webchat JSON API.
'use strict';

const POLL_MS = 3000;
const TIMEOUT_MS = 15000; // a hung request must not leave the input disabled forever
const KEY_SESSION = 'sapa.session_id';
const KEY_LANG = 'sapa.lang';

const STRINGS = {
  id: { langGroup: 'Bahasa', log: 'Percakapan', inputLabel: 'Ketik pesan', placeholder: 'Tulis pesan…', send: 'Kirim',
    sendFailed: 'Pesan gagal terkirim, coba lagi.', connectFailed: 'Tidak dapat terhubung ke server, coba lagi nanti.' },
  en: { langGroup: 'Language', log: 'Conversation', inputLabel: 'Type a message', placeholder: 'Write a message…', send: 'Send',
    sendFailed: 'Message failed to send, try again.', connectFailed: 'Cannot connect to the server, try again later.' },
};

const $ = (id) => document.getElementById(id);
const [log, form, input, sendBtn, errorLine] = ['chat-log', 'chat-form', 'chat-input', 'chat-send', 'chat-error'].map($);

// localStorage can throw (private mode, disabled storage); the chat still works, just without persistence.
const store = {
  get(k) { try { return localStorage.getItem(k); } catch { return null; } },
  set(k, v) { try { v == null ? localStorage.removeItem(k) : localStorage.setItem(k, v); } catch { /* ignore */ } },
};

let lang = store.get(KEY_LANG) === 'en' ? 'en' : 'id';
let sessionId = store.get(KEY_SESSION);
let sessionPromise = null; // in-flight session creation, shared by concurrent callers
const rendered = new Set(); // server message ids already on screen
let lastId = 0;             // highest rendered id, used as ?after= when polling
let sending = false;
let syncing = false;
let sendGen = 0;    // bumped on every send so a poll that overlapped a send can discard its result
let pending = null; // {key, cmid} of the last failed message: a retry of it reuses its client_message_id
let error = null;   // shown error as {key} or {text}; kept so a language switch can re-translate it

const t = (key) => STRINGS[lang][key];

// crypto.randomUUID only exists in secure contexts (https/localhost); fall back to getRandomValues.
const uuid = () => (crypto.randomUUID ? crypto.randomUUID()
  : '10000000-1000-4000-8000-100000000000'.replace(/[018]/g, (c) =>
    (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16)));

/* ---------- UI strings and errors ---------- */

function applyLang() {
  document.documentElement.lang = lang;
  document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll('[data-i18n-placeholder]').forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  document.querySelectorAll('[data-i18n-label]').forEach((el) => el.setAttribute('aria-label', t(el.dataset.i18nLabel)));
  document.querySelectorAll('.lang-btn').forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.lang === lang)));
  showError(error);
}

function showError(e) {
  error = e;
  errorLine.hidden = !e;
  errorLine.textContent = e ? (e.text || t(e.key)) : '';
}

function setSending(busy) {
  sending = busy;
  input.disabled = sendBtn.disabled = busy;
  log.querySelectorAll('.quick-reply').forEach((b) => { b.disabled = busy; });
}

/* ---------- HTTP ---------- */

// Resolves to {ok, status, data} for any HTTP response; rejects only on network failure/timeout.
async function api(method, path, body) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
  try {
    const res = await fetch(path, body
      ? { method, signal: ctrl.signal, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }
      : { method, signal: ctrl.signal });
    const data = await res.json().catch(() => ({}));
    return { ok: res.ok, status: res.status, data: data || {} };
  } finally { clearTimeout(timer); }
}

function ensureSession() {
  if (sessionId) return Promise.resolve(sessionId);
  if (!sessionPromise) {
    sessionPromise = api('POST', '/api/webchat/sessions', { language: lang })
      .then((res) => {
        if (!res.ok || !res.data.session_id) throw res;
        sessionId = String(res.data.session_id);
        store.set(KEY_SESSION, sessionId);
        return sessionId;
      })
      .finally(() => { sessionPromise = null; });
  }
  return sessionPromise;
}

function resetSession() {
  sessionId = null;
  store.set(KEY_SESSION, null);
  // Ids belong to the old conversation; forget them so the new session's ids are not taken as duplicates.
  // Bubbles without an id (an optimistic send in progress) stay.
  log.querySelectorAll('.msg[data-id]').forEach((m) => m.closest('.row').remove());
  rendered.clear();
  lastId = 0;
}

// Runs request(sessionId). If the server no longer knows our session, start a new one and retry once.
async function withSession(request) {
  const sid = await ensureSession();
  let res = await request(sid);
  if (res.status === 404 && res.data.error === 'unknown session') {
    if (sessionId === sid) resetSession(); // another caller may already have replaced it
    res = await request(await ensureSession());
  }
  return res;
}

/* ---------- Rendering ---------- */

function markRendered(bubble, id) {
  bubble.dataset.id = id;
  rendered.add(id);
  lastId = Math.max(lastId, id);
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text != null) node.textContent = text; // textContent, never innerHTML: message text is untrusted
  return node;
}

// Our own messages may carry links (an agent's file, a signed /media/ link): those become anchors, built
// node by node (never innerHTML), and only http(s) or same-site paths; the customer's words stay plain text.
const LINK = /(https?:\/\/[^\s<>"]+|\/media\/[^\s<>"]+)/g;
function linkify(node, text) {
  let last = 0;
  for (const match of text.matchAll(LINK)) {
    if (match.index > last) node.append(text.slice(last, match.index));
    const a = document.createElement('a');
    a.href = match[0];
    a.textContent = match[0];
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    node.append(a);
    last = match.index + match[0].length;
  }
  if (last < text.length) node.append(text.slice(last));
}

// One .row per message: optional agent label, the .msg bubble (text only), optional quick replies.
function addRow(msg) {
  const out = msg.direction === 'out';
  const row = el('div', `row ${out ? 'row-out' : 'row-in'}`);
  if (msg.sender === 'agent' && msg.agent_name) row.append(el('div', 'msg-sender', msg.agent_name));

  const bubble = el('div', `msg ${out ? 'msg-out' : 'msg-in'}`, out ? null : (msg.text || ''));
  if (out) linkify(bubble, msg.text || '');
  if (msg.sender) bubble.dataset.sender = msg.sender;
  if (msg.created_at) bubble.title = new Date(msg.created_at).toLocaleString();
  row.append(bubble);

  if (out && msg.buttons && msg.buttons.length) {
    const group = el('div', 'quick-replies');
    for (const b of msg.buttons) {
      const btn = el('button', 'quick-reply', b.title);
      btn.type = 'button';
      btn.dataset.payload = b.payload;
      btn.disabled = sending;
      group.append(btn);
    }
    row.append(group);
  }

  log.append(row);
  log.scrollTop = log.scrollHeight;
  if (msg.id != null) markRendered(bubble, msg.id);
  // A press stored earlier (history after a reload): show the question it answered as answered.
  if (!out && msg.payload && msg.id != null) markAnswered(questionOf(msg.id, msg.payload), msg.payload);
  return row;
}

// The quick-reply group a press answered: the latest earlier message offering that payload.
function questionOf(pressId, payload) {
  const groups = [...log.querySelectorAll('.row-out .quick-replies')].reverse();
  return groups.find((g) => Number(g.closest('.row').querySelector('.msg').dataset.id) < pressId
    && [...g.children].some((b) => b.dataset.payload === payload)) || null;
}

// The first press answers a question: that button is marked chosen and the others muted. Old buttons
// stay clickable (another tab, a reload); Sapa answers a press of an answered question "no longer open".
function markAnswered(group, payload) {
  if (!group || group.classList.contains('answered')) return;
  group.classList.add('answered');
  for (const b of group.children) {
    if (b.dataset.payload === payload) b.classList.add('chosen');
  }
}

function renderMessages(list) {
  [...list].sort((a, b) => a.id - b.id).forEach((m) => { if (!rendered.has(m.id)) addRow(m); });
}

/* ---------- History / polling ---------- */

// Fetches messages newer than lastId (after=0 on first load = full history). Returns true on success.
async function sync() {
  if (syncing || sending) return false;
  syncing = true;
  const gen = sendGen;
  try {
    const res = await withSession((sid) =>
      api('GET', `/api/webchat/sessions/${encodeURIComponent(sid)}/messages?after=${lastId}`));
    if (!res.ok) return false;
    // If a send started meanwhile, these messages may include its customer message, whose optimistic
    // bubble has no id yet; skip them and let the send's response / the next poll fill in.
    if (gen === sendGen) renderMessages(res.data.messages || []);
    if (error && error.key === 'connectFailed') showError(null);
    return true;
  } catch {
    return false; // polling failures stay quiet; the next tick retries
  } finally { syncing = false; }
}

/* ---------- Sending ---------- */

// payload and buttonOf (the id of the message bubble the button belongs to) only for a button press.
async function send(rawText, payload, buttonOf) {
  const text = (rawText || '').trim();
  if (!text || sending) return;
  const isButton = payload != null;
  const key = isButton ? `button:${buttonOf}:${payload}:${text}` : `text:${text}`;
  if (!pending || pending.key !== key) pending = { key, cmid: uuid() };
  const cmid = pending.cmid;

  sendGen++;
  setSending(true);
  showError(null);
  if (!isButton) input.value = '';
  const row = addRow({ direction: 'in', sender: 'customer', text }); // optimistic bubble, no id yet

  try {
    // The page's language travels with every message: a switch before (or during) the chat is honoured.
    const body = (sid) => Object.assign({ session_id: sid, client_message_id: cmid, text, language: lang },
      isButton ? { payload } : {}, isButton && buttonOf ? { button_of: buttonOf } : {});
    const res = await withSession((sid) => api('POST', '/api/webchat/messages', body(sid)));
    if (!res.ok) throw res;
    pending = null;
    const id = res.data.message_id;
    // A retried message may already be on screen (a poll saw the first attempt): keep just one bubble.
    if (rendered.has(id)) row.remove();
    else markRendered(row.querySelector('.msg'), id);
    if (isButton) markAnswered(questionOf(id, payload), payload);
    renderMessages(res.data.replies || []);
  } catch (e) {
    // Not sent: remove the bubble and hand the text back so the user can retry it.
    row.remove();
    if (!isButton) input.value = text;
    const is4xx = e && e.status >= 400 && e.status < 500 && typeof e.data.error === 'string';
    showError(is4xx ? { text: e.data.error } : { key: 'sendFailed' }); // 5xx/network: generic text
  } finally {
    setSending(false);
    if (!isButton) input.focus();
  }
}

/* ---------- Wiring ---------- */

form.addEventListener('submit', (e) => { e.preventDefault(); send(input.value); });

log.addEventListener('click', (e) => {
  const btn = e.target.closest('.quick-reply');
  if (!btn || btn.disabled) return;
  const owner = Number(btn.closest('.row').querySelector('.msg').dataset.id) || null;
  send(btn.textContent, btn.dataset.payload, owner);
});

document.querySelectorAll('.lang-btn').forEach((b) => b.addEventListener('click', () => {
  lang = b.dataset.lang;
  store.set(KEY_LANG, lang);
  applyLang();
}));

document.addEventListener('visibilitychange', () => { if (!document.hidden) sync(); });
setInterval(() => { if (!document.hidden) sync(); }, POLL_MS);

applyLang();
sync().then((ok) => {
  if (!ok) showError({ key: 'connectFailed' });
  setSending(false);
});
