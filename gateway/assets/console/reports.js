// SPDX-License-Identifier: MIT
// The console's Reports view (location.hash `#/reports`): GET /v1/reports over a from/to
// range (the last 7 days by default) and one channel or all, shown as tables: first
// response and resolution times (p50/p90) by channel and by policy, breaches by policy and
// clock, what each person answered and resolved, and the customers waiting longest now.
// Durations read as a person says them ("4m 12s"); every value goes in as text.
import { el, $, sb, duration, fullTime, channelLabel } from './util.js';

const DAY = 86400000;

// A Date as the value of an <input type="datetime-local"> (local time, minutes).
function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

function table(hook, head, rows, empty) {
  if (!rows.length) return el('p', { class: 'muted', 'data-sb': `${hook}-empty` }, empty);
  return el('table', { class: 'report-table', 'data-sb': hook },
    el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows));
}

function percentileRows(hook, by, label = (k) => k) {
  return Object.entries(by || {}).sort((a, b) => b[1].n - a[1].n).map(([k, v]) =>
    el('tr', { 'data-sb': hook, 'data-key': k },
      el('th', { scope: 'row' }, label(k)),
      el('td', { 'data-sb': 'p50' }, duration(v.p50)),
      el('td', { 'data-sb': 'p90' }, duration(v.p90)),
      el('td', { 'data-sb': 'n' }, String(v.n))));
}

export class ReportsView {
  // root: the [data-sb=reports] section; ctx.api the signed-in Api.
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.form = $(sb('report-form'), root);
    this.form.addEventListener('submit', (e) => { e.preventDefault(); this.load(); });
    this.seq = 0;
  }

  // Shows the view; fills the range with the last 7 days the first time.
  open() {
    const from = this.form.elements.from;
    const to = this.form.elements.to;
    if (!from.value || !to.value) {
      const now = Date.now();
      from.value = localInput(now - 7 * DAY);
      to.value = localInput(now);
    }
    this.load();
  }

  async load() {
    const f = this.form.elements;
    const q = new URLSearchParams();
    const from = Date.parse(f.from.value);
    const to = Date.parse(f.to.value);
    const err = $(sb('report-error'), this.root);
    err.hidden = true;
    if (Number.isNaN(from) || Number.isNaN(to) || from > to) {
      err.textContent = 'Pick a start before the end.';
      err.hidden = false;
      return;
    }
    q.set('from', String(from));
    q.set('to', String(to + 59999)); // the whole last minute
    if (f.channel.value) q.set('channel', f.channel.value);
    const mine = ++this.seq;
    this.root.dataset.state = 'loading';
    let rep;
    try {
      rep = await this.ctx.api.get(`/v1/reports?${q}`);
    } catch (e) {
      if (mine !== this.seq) return;
      err.textContent = e.status === 403 ? 'Your role may not read reports.' : `Cannot load the report: ${e.message}`;
      err.hidden = false;
      this.root.dataset.state = 'error';
      return;
    }
    if (mine !== this.seq) return; // a newer request is on its way
    this.render(rep);
    this.root.dataset.state = 'ready';
  }

  render(rep) {
    const frt = rep.first_response || {};
    const res = rep.resolution || {};
    const head = ['', 'p50', 'p90', 'conversations'];
    const breachRows = [];
    for (const [policy, clocks] of Object.entries(rep.breaches?.by_policy || {})) {
      for (const [clock, n] of Object.entries(clocks)) {
        if (clock === 'total') continue;
        breachRows.push(el('tr', { 'data-sb': 'report-breach', 'data-policy': policy, 'data-clock': clock },
          el('th', { scope: 'row' }, policy), el('td', {}, clock.replace('_', ' ')), el('td', { 'data-sb': 'n' }, String(n))));
      }
    }
    const people = (rep.people || []).map((p) => el('tr', { 'data-sb': 'report-person', 'data-id': p.id },
      el('th', { scope: 'row' }, p.name || p.id),
      el('td', { 'data-sb': 'answered' }, String(p.answered)),
      el('td', { 'data-sb': 'first' }, String(p.first_responses)),
      el('td', { 'data-sb': 'resolved' }, String(p.resolved))));
    const now = Date.now();
    const waiting = (rep.waiting || []).map((w) => el('tr', { 'data-sb': 'report-waiting', 'data-conv': w.conv },
      el('th', { scope: 'row' }, el('a', { href: `#/c/${w.conv}` }, w.contact_name || 'Customer')),
      el('td', { 'data-sb': 'waited', title: fullTime(w.awaiting_since) }, duration(now - w.awaiting_since)),
      el('td', {}, channelLabel(w.channel)),
      el('td', {}, w.subject || ''),
      el('td', {}, w.assignee ? this.ctx.nameOf(w.assignee) : 'nobody')));
    const body = $(sb('report-body'), this.root);
    body.replaceChildren(...[
      rep.truncated ? el('p', { class: 'error', 'data-sb': 'report-truncated' },
        `Only the first ${rep.scanned} facts were counted: pick a shorter range.`) : null,
      el('h3', {}, 'First response by channel'),
      table('report-frt-channel', head, percentileRows('report-frt', frt.by_channel, channelLabel), 'No first responses in this range.'),
      el('h3', {}, 'First response by policy'),
      table('report-frt-policy', head, percentileRows('report-frt-pol', frt.by_policy), 'No first responses under a policy.'),
      el('h3', {}, 'Resolution by channel'),
      table('report-res-channel', head, percentileRows('report-res', res.by_channel, channelLabel), 'Nothing resolved in this range.'),
      el('h3', {}, 'Resolution by policy'),
      table('report-res-policy', head, percentileRows('report-res-pol', res.by_policy), 'Nothing resolved under a policy.'),
      el('h3', {}, `Breaches (${rep.breaches?.total ?? 0})`),
      table('report-breaches', ['policy', 'clock', 'breaches'], breachRows, 'No breaches.'),
      el('h3', {}, 'People'),
      table('report-people', ['', 'answered', 'first responses', 'resolved'], people, 'Nobody answered in this range.'),
      el('h3', {}, 'Waiting now'),
      table('report-waiting-list', ['customer', 'waiting', 'channel', 'subject', 'assignee'], waiting, 'Nobody is waiting.'),
    ].filter(Boolean));
  }
}
