// SPDX-License-Identifier: MIT
// Small helpers of the staff console: DOM building (text only, never innerHTML with data),
// time and duration formatting, SLA due times, random client ids.

// el('button', {class: 'x', 'data-sb': 'claim', onclick: f}, 'Claim', child…)
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
export const sb = (name) => `[data-sb="${name}"]`;

// 192000 -> "3m 12s"; 7260000 -> "2h 1m"; 90000000 -> "1d 1h".
export function duration(ms) {
  let s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

export function clock(ts) {
  if (!ts) return '';
  const t = new Date(ts);
  const now = new Date();
  const hm = t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (t.toDateString() === now.toDateString()) return hm;
  return `${t.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${hm}`;
}

export const fullTime = (ts) => (ts ? new Date(ts).toLocaleString() : '');

// The SLA time that matters now: the first response until there is one, then the next
// response; null when no policy gives a due time or nobody is waiting.
export function slaDue(c) {
  const sla = c && c.sla;
  if (!sla || c.status === 'resolved' || c.status === 'snoozed') return null;
  const first = sla.first_response_due ?? null;
  const next = sla.next_response_due ?? null;
  if (!c.first_response_at) return first ?? next;
  return next ?? (c.awaiting_since ? first : null);
}

// What the SLA badge says at `now`: {text, overdue, title} or null.
export function slaText(due, awaitingSince, now = Date.now()) {
  if (due) {
    const left = due - now;
    if (left < 0) return { text: `overdue ${duration(-left)}`, overdue: true, title: `Was due ${fullTime(due)}` };
    return { text: `due in ${duration(left)}`, overdue: false, title: `Due ${fullTime(due)}` };
  }
  if (awaitingSince) {
    return { text: `waiting ${duration(now - awaitingSince)}`, overdue: false,
      title: `Customer waiting since ${fullTime(awaitingSince)} (no SLA policy)` };
  }
  return null;
}

// Paints every [data-sb=sla] element below root from its data-due / data-awaiting.
export function paintSla(root = document, now = Date.now()) {
  for (const e of root.querySelectorAll('[data-sb="sla"]')) {
    const due = Number(e.dataset.due) || 0;
    const since = Number(e.dataset.awaiting) || 0;
    const t = slaText(due, since, now);
    e.hidden = !t;
    if (!t) continue;
    if (e.textContent !== t.text) e.textContent = t.text;
    e.title = t.title;
    e.classList.toggle('overdue', t.overdue);
    e.dataset.overdue = t.overdue ? 'true' : 'false';
  }
}

export function slaBadge(c) {
  const due = slaDue(c);
  const awaiting = c.status === 'open' ? c.awaiting_since : null;
  const e = el('span', { class: 'sla', 'data-sb': 'sla', 'data-due': due || '',
    'data-awaiting': awaiting || '' });
  paintSla({ querySelectorAll: () => [e] });
  return e;
}

export function clientId() {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return `console-${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`;
}

// 532 -> "532 B"; 2048 -> "2.0 KB"; 26214400 -> "25 MB".
export function humanSize(n) {
  if (typeof n !== 'number' || !(n >= 0)) return '';
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

// Compares transcript seqs "<ms>-<n>".
export function seqCmp(a, b) {
  const [am, an] = String(a).split('-').map(Number);
  const [bm, bn] = String(b).split('-').map(Number);
  return am - bm || (an || 0) - (bn || 0);
}

export const CHANNELS = ['webchat', 'email', 'mastodon', 'bluesky', 'hook', 'api'];
export const CHANNEL_LABEL = { webchat: 'Web chat', email: 'Email', mastodon: 'Mastodon',
  bluesky: 'Bluesky', hook: 'Hook', api: 'API' };
export const channelLabel = (ch) => CHANNEL_LABEL[ch] || ch;

export function displayName(author, meId) {
  if (!author) return 'someone';
  if (author.type === 'system') return 'Switchboard';
  if (meId && author.id === meId) return 'You';
  return author.name || (author.type === 'contact' ? 'Customer' : author.id || 'someone');
}
