// SPDX-License-Identifier: MIT
// The console's notifications (docs/sla.md, "Notifications"): a bell with the unread count,
// a list of SLA warnings, breaches and escalations addressed to the signed-in person
// (GET /v1/notifications), read up to now when the list is opened (POST
// /v1/notifications/read), re-read on each SLA event of the live feed. When the tab is
// hidden and the browser allows it, each new one also shows as a browser notification;
// permission is asked only when the bell is clicked, never on load. Admins also get
// connector alerts here (core/alert.h: a Mastodon or Bluesky account paused because the
// provider refused its credentials, and resumed), which no feed event announces: the list
// is also read again every REFRESH_MS. A colleague assigning a conversation to us adds an
// `assigned` one ("Ann assigned you Dora"), linked to the conversation.
import { el, $, sb, clock, duration } from './util.js';

const RETRY_MS = [150, 500, 1500, 4000]; // the feed may outrun the list's write
const REFRESH_MS = 30000;
const TYPE_TEXT = { sla_warning: 'SLA warning', sla_breach: 'SLA breach', escalated: 'Escalated',
  connector: 'Channel account', assigned: 'Assigned' };
const CHANNEL_NAME = { mastodon: 'Mastodon', bluesky: 'Bluesky', email: 'Email', hook: 'Hook' };
const CLOCK_TEXT = { first_response: 'first response', next_response: 'next response', resolution: 'resolution' };

export function notifText(n) {
  if (n.type === 'assigned') return `${n.by || 'A colleague'} assigned you ${n.customer || n.subject || 'a conversation'}`;
  if (n.type === 'connector') {
    const what = `${CHANNEL_NAME[n.channel] || n.channel} account ${n.account}`;
    return n.state === 'paused' ? `${what} paused: ${n.reason || 'credentials refused'}` : `${what} ${n.state}`;
  }
  const what = CLOCK_TEXT[n.clock] || n.clock || 'response';
  if (n.type === 'sla_warning') return `${what} due in ${duration(Math.max(0, (n.due || 0) - n.ts))}`;
  return n.type === 'escalated' ? `${what} overdue, escalated (${n.percent} %)` : `${what} overdue`;
}

export class Notifs {
  constructor(ctx) {
    this.ctx = ctx; // {api, open(convId)}
    this.items = [];
    this.unread = 0;
    this.known = null; // ids seen so far (null until the first load: those never pop up)
    this.timer = null;
    $(sb('notif-bell')).addEventListener('click', () => this.toggle());
  }

  get panel() { return $(sb('notif-panel')); }

  reset() {
    clearTimeout(this.timer);
    clearInterval(this.poll);
    this.poll = null;
    this.items = [];
    this.unread = 0;
    this.known = null;
    this.panel.hidden = true;
    this.render();
  }

  async refresh() {
    if (!this.ctx.api) return [];
    if (!this.poll) this.poll = setInterval(() => this.refresh(), REFRESH_MS);
    let r;
    try { r = await this.ctx.api.get('/v1/notifications?limit=50'); } catch { return []; }
    this.items = r.items || [];
    this.unread = r.unread || 0;
    const fresh = this.known ? this.items.filter((n) => !this.known.has(n.id)) : [];
    this.known = new Set(this.items.map((n) => n.id));
    this.render();
    for (const n of fresh) this.popUp(n);
    if (!this.panel.hidden && this.unread) this.markRead();
    return this.items;
  }

  // An SLA event of the feed: it may be for us; the list shows when it is.
  onEvent(ev) {
    const id = ev.message && ev.message.id;
    let i = 0;
    const again = async () => {
      const items = await this.refresh();
      if (!items.some((n) => n.id === id) && i < RETRY_MS.length) this.timer = setTimeout(again, RETRY_MS[i++]);
    };
    clearTimeout(this.timer);
    again();
  }

  popUp(n) {
    if (!document.hidden || typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
    const title = n.type === 'connector' || n.type === 'assigned' ? TYPE_TEXT[n.type]
      : `${TYPE_TEXT[n.type] || 'SLA'}: ${n.subject || n.customer || n.conv}`;
    const note = new Notification(title, { body: notifText(n), tag: n.id });
    note.onclick = () => { window.focus(); if (n.conv) this.ctx.open(n.conv); note.close(); };
  }

  toggle(show = this.panel.hidden) {
    this.panel.hidden = !show;
    $(sb('notif-bell')).setAttribute('aria-expanded', String(show));
    // asked here, on the person's click, never on load
    if (typeof Notification !== 'undefined' && Notification.permission === 'default') {
      Notification.requestPermission().catch(() => {});
    }
    if (show && this.unread) this.markRead();
  }

  async markRead() {
    const until = this.items.length ? Math.max(...this.items.map((n) => n.ts)) : Date.now();
    try {
      const r = await this.ctx.api.post('/v1/notifications/read', { until });
      this.unread = r.unread || 0;
    } catch { return; }
    this.render();
  }

  render() {
    const count = $(sb('notif-count'));
    count.textContent = this.unread ? String(this.unread) : '';
    count.hidden = !this.unread;
    $(sb('notif-bell')).setAttribute('aria-label', `Notifications, ${this.unread} unread`);
    const read = this.items.length - this.unread;
    $(sb('notif-list')).replaceChildren(...this.items.map((n, i) => el('li', {
      'data-sb': 'notif-item', 'data-id': n.id, 'data-conv': n.conv, 'data-type': n.type,
      class: i < this.items.length - read ? 'unread' : '',
    }, n.type === 'assigned'
      ? el('a', { href: `#/c/${n.conv}`, onclick: () => this.toggle(false) },
        el('span', { 'data-sb': 'notif-text' }, notifText(n)), ' ',
        el('time', { datetime: new Date(n.ts).toISOString() }, clock(n.ts)))
      : n.type === 'connector'
      ? el('span', {}, el('strong', {}, TYPE_TEXT.connector), ' ', notifText(n), ' ',
        el('time', { datetime: new Date(n.ts).toISOString() }, clock(n.ts)))
      : el('a', { href: `#/c/${n.conv}`, onclick: () => this.toggle(false) },
        el('strong', {}, TYPE_TEXT[n.type] || n.type), ' ',
        el('span', {}, n.subject || n.customer || n.conv), ' — ', notifText(n), ' ',
        el('time', { datetime: new Date(n.ts).toISOString() }, clock(n.ts))))));
    $(sb('notif-empty')).hidden = this.items.length > 0;
  }
}
