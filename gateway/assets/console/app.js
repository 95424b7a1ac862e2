// SPDX-License-Identifier: MIT
// The Switchboard staff console (served at /console/): sign-in with a staff token kept in
// localStorage, the queue and the open conversation as two panes (one at a time on a
// phone, routed by location.hash `#/c/<id>`), the live feed (SSE) driving both, "X is
// replying…" from colleagues' typing events, who is online (GET /v1/presence when the
// server has it, polled and re-read on each `presence` event of the feed) and the keyboard
// shortcuts, and the notification bell (notifs.js). No framework, no build step.
import { Api } from './api.js';
import { Queue } from './queue.js';
import { ConvView } from './conv.js';
import { ReportsView } from './reports.js';
import { Notifs } from './notifs.js';
import { CannedPicker, CannedView, cannedStore } from './canned.js';
import { el, $, sb, paintSla } from './util.js';

const TOKEN_KEY = 'switchboard.console.token';
const TYPING_TTL_MS = 8000;
const PRESENCE_EVERY_MS = 30000;

const state = {
  api: null,
  me: null,
  feed: null,
  typing: new Map(), // conv -> Map(who id -> {name, type, until})
  names: new Map(), // staff/bot id -> name, learnt from transcripts and typing events
  presenceTimer: null,
  ticker: null,
};

const queue = new Queue($('.queue-pane'), {
  get api() { return state.api; },
  me: () => state.me,
  replying,
  nameOf,
  openId: () => conv.id,
});

const conv = new ConvView($(sb('conv-view')), {
  get api() { return state.api; },
  me: () => state.me,
  replying,
  customerTyping,
  nameOf,
  learnName,
  onChanged: () => queue.scheduleRefresh(0),
  open: (id) => { location.hash = `#/c/${id}`; },
  back: () => { location.hash = '#/'; },
});

const reports = new ReportsView($(sb('reports')), {
  get api() { return state.api; },
  nameOf,
});

const canned = cannedStore({ get api() { return state.api; } });
new CannedPicker({
  get api() { return state.api; },
  // What a canned reply's placeholders become (docs/canned.md); missing values are ''.
  values: () => {
    const c = conv.conv || {};
    const ct = { ...(c.contact || {}) };
    if (conv.contactInfo && conv.contactInfo.id === ct.id) ct.email = conv.contactInfo.email;
    return { contact: ct, agent: { name: state.me && state.me.name }, conversation: { id: conv.id } };
  },
}, canned);
const cannedView = new CannedView($(sb('canned')), {
  get api() { return state.api; },
  me: () => state.me,
}, canned);

const notifs = new Notifs({
  get api() { return state.api; },
  open: (id) => { location.hash = `#/c/${id}`; },
});

// ---- names and typing ----

function learnName(who) {
  if (who && who.id && who.name && who.type !== 'contact') state.names.set(who.id, who.name);
}

function nameOf(id) {
  if (state.me && id === state.me.id) return 'you';
  return state.names.get(id) || 'a colleague';
}

// "Alice is replying…" (colleagues and bots) or "Bob is typing…" (the customer) for one
// conversation, or null.
function typingText(convId, customer) {
  const m = state.typing.get(convId);
  if (!m) return null;
  const now = Date.now();
  const names = [...m.values()].filter((t) => t.until > now && (t.type === 'contact') === customer)
    .map((t) => t.name);
  const verb = customer ? 'typing' : 'replying';
  if (!names.length) return null;
  if (names.length === 1) return `${names[0]} is ${verb}…`;
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]} are ${verb}…`;
}

function replying(convId) { return typingText(convId, false); }
function customerTyping(convId) { return typingText(convId, true); }

function onTyping(ev) {
  const who = ev.who || {};
  if (!ev.conv || (state.me && who.id === state.me.id)) return;
  learnName(who);
  let m = state.typing.get(ev.conv);
  if (!m) state.typing.set(ev.conv, (m = new Map()));
  const key = who.id || who.name || 'someone';
  if (ev.on === false) m.delete(key);
  else {
    const name = who.type === 'contact' ? (who.name || 'The customer') : (who.name || 'A colleague');
    m.set(key, { name, type: who.type, until: Date.now() + TYPING_TTL_MS });
  }
  if (!m.size) state.typing.delete(ev.conv);
  queue.paintReplying();
  conv.paintReplying();
}

function pruneTyping() {
  const now = Date.now();
  let changed = false;
  for (const [c, m] of state.typing) {
    for (const [k, t] of m) if (t.until <= now) { m.delete(k); changed = true; }
    if (!m.size) state.typing.delete(c);
  }
  if (changed) { queue.paintReplying(); conv.paintReplying(); }
}

// ---- the live feed ----

function onEvent(ev) {
  if (ev.type === 'typing') { onTyping(ev); return; }
  if (ev.type === 'presence') { pollPresence(); return; } // someone came or went
  if (!ev.conv) return;
  const m = ev.message;
  // Whoever just wrote has stopped typing.
  if (m && m.author && m.author.id && state.typing.has(ev.conv)) {
    state.typing.get(ev.conv).delete(m.author.id);
    queue.paintReplying();
    conv.paintReplying();
  }
  if (m) learnName(m.author);
  if (m && m.kind === 'event' && /^(sla_warning|sla_breach|escalated)$/.test(m.type)) notifs.onEvent(ev);
  else if (m && m.kind === 'event' && m.type === 'assigned' && state.me && m.to === state.me.id) notifs.onEvent(ev);
  queue.applyState(ev.conversation);
  conv.onEvent(ev);
  queue.scheduleRefresh();
}

function setLive(s, reconnected) {
  const e = $(sb('live'));
  e.dataset.state = s;
  e.textContent = s === 'live' ? 'Live' : s === 'reconnecting' ? 'Reconnecting…' : 'Offline, retrying…';
  if (s === 'live' && reconnected) {
    queue.refresh();
    notifs.refresh();
    conv.catchUp();
  }
}

// ---- presence (GET /v1/presence, when the server has it) ----

async function pollPresence() {
  clearTimeout(state.presenceTimer);
  if (!state.api) return;
  let items = null;
  try { items = await state.api.presence(); } catch { return; }
  const box = $(sb('presence'));
  if (!items) { box.hidden = true; return; } // no such endpoint: no panel, no more polling
  for (const p of items) learnName({ ...p, type: 'staff' });
  $(sb('presence-list')).replaceChildren(...items.map((p) => el('li', {
    'data-sb': 'presence-item', 'data-id': p.id, title: p.role || '',
  }, p.id === state.me.id ? `${p.name || 'you'} (you)` : p.name || p.id)));
  box.hidden = false;
  state.presenceTimer = setTimeout(pollPresence, PRESENCE_EVERY_MS);
}

// ---- sign in and out ----

function showSignin(message) {
  $('#app').hidden = true;
  $('#signin').hidden = false;
  const err = $(sb('signin-error'));
  err.textContent = message || '';
  err.hidden = !message;
  const input = $(sb('token-input'));
  input.value = '';
  input.focus();
}

async function signIn(token, remembered) {
  const api = new Api(token, { onUnauthorized: () => signOut('Your token is no longer valid (revoked?). Paste a new one.') });
  const btn = $(sb('signin'));
  btn.disabled = true;
  const err = $(sb('signin-error'));
  err.hidden = true; /* the answer to this attempt replaces the last one */
  err.textContent = '';
  try {
    const me = await new Api(token).me();
    if (me.kind !== 'staff') {
      showSignin('This is a bot token; the console needs a staff token (agent, exec or admin).');
      return;
    }
    localStorage.setItem(TOKEN_KEY, token);
    state.api = api;
    state.me = me;
    learnName({ ...me, type: 'staff' });
    start();
  } catch (e) {
    if (remembered && e.status === 401) localStorage.removeItem(TOKEN_KEY);
    showSignin(e.status === 401 ? (remembered
      ? 'Your saved token is no longer valid (revoked?). Paste a new one.'
      : 'That token is unknown or has been revoked. Check it and try again.')
      : e.status === 403 ? 'This token may not use the console.'
        : `Cannot sign in: ${e.message}`);
  } finally {
    btn.disabled = false;
  }
}

function start() {
  $('#signin').hidden = true;
  $('#app').hidden = false;
  $(sb('me')).textContent = `${state.me.name || state.me.id} (${state.me.role})`;
  setLive('connecting');
  state.feed = state.api.events({ onEvent, onState: setLive, onRevoked: () => signOut('Your token was revoked. Paste a new one.') });
  queue.refresh();
  notifs.refresh();
  route();
  pollPresence();
  state.ticker = setInterval(() => { paintSla(); pruneTyping(); }, 1000);
}

function signOut(message) {
  if (!state.api) return;
  conv.close();
  if (state.feed) state.feed.close();
  clearInterval(state.ticker);
  clearTimeout(state.presenceTimer);
  state.api = null;
  state.me = null;
  state.feed = null;
  state.typing.clear();
  notifs.reset();
  queue.items = [];
  queue.render();
  localStorage.removeItem(TOKEN_KEY);
  $(sb('presence')).hidden = true;
  if (location.hash) history.replaceState(null, '', location.pathname);
  showSignin(message);
}

// ---- routing: #/c/<id> opens a conversation ----

function route() {
  if (!state.api) return;
  const m = /^#\/c\/(c_[A-Za-z0-9]+)$/.exec(location.hash);
  $(sb('reports')).hidden = location.hash !== '#/reports';
  $(sb('canned')).hidden = location.hash !== '#/canned';
  if (location.hash === '#/reports') {
    document.body.dataset.view = 'reports';
    reports.open();
  } else if (location.hash === '#/canned') {
    document.body.dataset.view = 'canned';
    cannedView.open();
  } else if (m) {
    document.body.dataset.view = 'conv';
    queue.selected = m[1];
    queue.markOpen(m[1]);
    conv.open(m[1]);
  } else if (!location.hash || location.hash === '#/' || location.hash === '#') {
    document.body.dataset.view = 'queue';
    queue.markOpen(null);
    if (conv.id) conv.close();
  }
}

// ---- keyboard ----

function isTyping(t) {
  return t instanceof Element && (t.matches('input, textarea, select, [contenteditable]') || t.isContentEditable);
}

function helpDialog(show) {
  const d = $(sb('help'));
  if (show && !d.open) d.showModal();
  else if (!show && d.open) d.close();
}

function onKeydown(e) {
  if (!state.api || e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
  if ($(sb('help')).open) return; // the dialog handles Esc itself
  const t = e.target;
  if (e.key === 'Escape') {
    if (isTyping(t)) { t.blur(); return; }
    if (document.body.dataset.view === 'conv' && matchMedia('(max-width: 799px)').matches) location.hash = '#/';
    return;
  }
  if (isTyping(t)) return;
  const inConv = !!conv.conv;
  const keys = {
    j: () => queue.move(1),
    k: () => queue.move(-1),
    Enter: () => {
      if (t instanceof Element && t.closest('a, button')) return false; // the browser activates it
      if (queue.selected) location.hash = `#/c/${queue.selected}`;
    },
    r: () => inConv && conv.focusReply(),
    n: () => inConv && conv.focusNote(),
    c: () => inConv && conv.claimToggle(),
    e: () => inConv && conv.resolveToggle(),
    s: () => inConv && conv.toggleSnooze(true),
    '/': () => $(sb('filter-text')).focus(),
    '?': () => helpDialog(true),
  };
  const f = keys[e.key];
  if (!f) return;
  if (f() === false) return;
  e.preventDefault();
}

// ---- wiring ----

$(sb('signin-form')).addEventListener('submit', (e) => {
  e.preventDefault();
  const token = $(sb('token-input')).value.trim();
  if (!token) { showSignin('Paste a staff token first.'); return; }
  signIn(token, false);
});
$(sb('signout')).addEventListener('click', () => signOut('Signed out.'));
$(sb('help-open')).addEventListener('click', () => helpDialog(true));
$('.skip').addEventListener('click', (e) => { e.preventDefault(); $(sb('conv-view')).focus(); });
$(sb('help-close')).addEventListener('click', (e) => { e.preventDefault(); helpDialog(false); });
document.addEventListener('keydown', onKeydown);
document.addEventListener('click', (e) => {
  // A click outside the snooze menu (or the assignee picker) closes it.
  const menu = $(sb('snooze-menu'));
  if (menu && !menu.hidden && !e.target.closest('.menu-wrap')) conv.toggleSnooze(false);
  const picker = $(sb('assign-menu'));
  if (picker && !picker.hidden && !e.target.closest('.menu-wrap')) conv.toggleAssign(false);
});
window.addEventListener('hashchange', route);
window.addEventListener('storage', (e) => {
  // Signed out (or in with another token) in another tab.
  if (e.key === TOKEN_KEY && state.api && e.newValue !== state.api.token) signOut('Signed out in another tab.');
});
window.addEventListener('beforeunload', () => conv.stopTyping());

const saved = localStorage.getItem(TOKEN_KEY);
if (saved) signIn(saved, true);
else showSignin();
