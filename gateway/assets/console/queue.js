// SPDX-License-Identifier: MIT
// The queue pane: GET /v1/conversations with the filters, in the order the API gives
// (most urgent SLA first), refetched (debounced) whenever the live feed says something
// changed; j/k selection; a client-side text filter over what is loaded. SLA badges are
// repainted every second by the app from their data-due / data-awaiting attributes.
import { el, $, sb, slaBadge, clock, channelLabel } from './util.js';

export class Queue {
  // ctx: {api, me(), replying(convId) -> text|null, openId() -> id|null, onError(e)}
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.list = $(sb('queue'), root);
    this.items = [];
    this.next = null;
    this.selected = null;
    this.filters = { status: 'open', assignee: 'any', channel: '', text: '' };
    this.timer = null;
    this.seq = 0; // answers of older requests are dropped
    const f = $(sb('filters'), root);
    f.addEventListener('submit', (e) => e.preventDefault());
    for (const name of ['status', 'assignee', 'channel']) {
      $(sb(`filter-${name}`), root).addEventListener('change', (e) => {
        this.filters[name] = e.target.value;
        this.refresh();
      });
    }
    $(sb('filter-text'), root).addEventListener('input', (e) => {
      this.filters.text = e.target.value.trim().toLowerCase();
      this.render();
    });
    $(sb('queue-more'), root).addEventListener('click', () => this.refresh(true));
  }

  // Refetches soon; many events in a burst cost one request.
  scheduleRefresh(delay = 250) {
    if (this.timer) return;
    this.timer = setTimeout(() => { this.timer = null; this.refresh(); }, delay);
  }

  async refresh(more = false) {
    const mine = ++this.seq;
    const errEl = $(sb('queue-error'), this.root);
    try {
      // A live refresh keeps as many rows as "Load more" had shown (the API's cap: 200).
      const limit = more ? 100 : Math.min(200, Math.max(100, this.items.length + 50));
      const r = await this.ctx.api.list(this.filters, more ? this.next : null, limit);
      if (mine !== this.seq) return;
      this.items = more ? dedupe(this.items.concat(r.items)) : r.items;
      this.next = r.next;
      errEl.hidden = true;
    } catch (e) {
      if (mine !== this.seq || e.status === 401) return;
      errEl.textContent = `Could not load the queue: ${e.message}`;
      errEl.hidden = false;
    }
    this.render();
  }

  // Applies the state carried by a live event to the row at once (the refetch follows).
  applyState(state) {
    const c = state && this.items.find((x) => x.id === state.id);
    if (c) Object.assign(c, state);
  }

  visible() {
    const t = this.filters.text;
    if (!t) return this.items;
    return this.items.filter((c) => [c.id, c.contact && c.contact.name, c.subject, c.channel,
      c.priority].some((v) => v && String(v).toLowerCase().includes(t)));
  }

  render() {
    const focused = document.activeElement && document.activeElement.dataset &&
      document.activeElement.dataset.sb === 'queue-item' ? document.activeElement.dataset.conv : null;
    const items = this.visible();
    const openId = this.ctx.openId();
    // Rows whose conversation did not change are kept (a click in progress survives).
    const old = new Map(Array.from(this.list.children, (li) => [li.dataset.key, li]));
    const rows = items.map((c) => {
      const key = JSON.stringify([c.id, c.status, c.priority, c.assignee, c.subject,
        c.message_count, c.last_message_at, c.updated_at, c.awaiting_since, c.sla,
        c.contact && c.contact.name]);
      const li = old.get(key) || this.row(c);
      li.dataset.key = key;
      return li;
    });
    const same = rows.length === this.list.children.length &&
      rows.every((li, i) => this.list.children[i] === li);
    if (!same) this.list.replaceChildren(...rows);
    this.markOpen(openId);
    for (const a of this.list.querySelectorAll(sb('queue-item'))) {
      if (a.dataset.conv === this.selected) a.dataset.selected = 'true';
      else delete a.dataset.selected;
    }
    this.paintReplying();
    $(sb('queue-count'), this.root).textContent = `(${items.length}${this.next ? '+' : ''})`;
    $(sb('queue-empty'), this.root).hidden = items.length > 0;
    $(sb('queue-more'), this.root).hidden = !this.next;
    if (focused) {
      const a = this.link(focused);
      if (a) a.focus();
    }
  }

  row(c) {
    const me = this.ctx.me();
    const name = (c.contact && c.contact.name) || 'Anonymous visitor';
    const assignee = !c.assignee ? 'unassigned' : c.assignee === me.id ? 'yours' :
      `assigned to ${this.ctx.nameOf(c.assignee)}`;
    const replying = this.ctx.replying(c.id);
    const a = el('a', {
      href: `#/c/${c.id}`, class: 'row', 'data-sb': 'queue-item', 'data-conv': c.id,
      'data-status': c.status,
    },
    el('span', { class: 'row-top' },
      el('span', { class: 'who' }, name),
      c.contact && c.contact.verified ? el('span', { class: 'badge ok', title: 'Verified identity' }, '✓') : null,
      el('span', { class: `badge ch ch-${c.channel}` }, channelLabel(c.channel)),
      c.priority !== 'normal' ? el('span', { class: `badge prio prio-${c.priority}` }, c.priority) : null,
      slaBadge(c)),
    el('span', { class: 'row-mid' }, c.subject || `${c.message_count || 0} message${c.message_count === 1 ? '' : 's'}`),
    el('span', { class: 'row-bottom' },
      el('span', { class: `status st-${c.status}` }, c.status),
      el('span', { class: 'assignee' }, assignee),
      el('span', { class: 'when', title: 'Last message' }, clock(c.last_message_at || c.updated_at))),
    el('span', { class: 'replying', 'data-sb': 'replying', hidden: !replying }, replying || ''));
    return el('li', {}, a);
  }

  link(id) {
    return this.list.querySelector(`[data-sb="queue-item"][data-conv="${CSS.escape(id)}"]`);
  }

  // Repaints the "X is replying…" line of every row.
  paintReplying() {
    for (const a of this.list.querySelectorAll(sb('queue-item'))) {
      const r = a.querySelector(sb('replying'));
      const t = this.ctx.replying(a.dataset.conv);
      r.hidden = !t;
      r.textContent = t || '';
    }
  }

  markOpen(id) {
    for (const a of this.list.querySelectorAll(sb('queue-item'))) {
      if (a.dataset.conv === id) a.setAttribute('aria-current', 'true');
      else a.removeAttribute('aria-current');
    }
  }

  // j/k: moves the selection (and the focus) through the visible rows.
  move(delta) {
    const links = Array.from(this.list.querySelectorAll(sb('queue-item')));
    if (!links.length) return;
    let i = links.findIndex((a) => a.dataset.conv === this.selected);
    i = i < 0 ? (delta > 0 ? 0 : links.length - 1) : Math.min(links.length - 1, Math.max(0, i + delta));
    this.select(links[i].dataset.conv);
  }

  select(id) {
    this.selected = id;
    for (const a of this.list.querySelectorAll(sb('queue-item'))) {
      if (a.dataset.conv === id) {
        a.dataset.selected = 'true';
        a.focus();
        a.scrollIntoView({ block: 'nearest' });
      } else delete a.dataset.selected;
    }
  }
}

function dedupe(items) {
  const seen = new Set();
  return items.filter((c) => !seen.has(c.id) && seen.add(c.id));
}
