// SPDX-License-Identifier: MIT
// The conversation pane: the transcript (customer and staff messages, internal notes,
// events, each styled apart), the customer's other conversations on every channel, the
// actions (claim/release, assign, resolve/reopen, snooze, priority) and the composer (reply or
// internal note). A reply is sent with `based_on` = the last seq shown; a 409 shows the
// newer messages and offers "Send anyway" (force). Typing in the reply box tells the
// customer and colleagues (POST /typing, at most every 3 s, off after 4 s idle or on send).
// A reply shows how its delivery went, from the transcript's delivery events (`ref` = the
// reply's id; docs/delivery.md): "sent", "failed: reason" ("retrying at …" while the
// server retries) and a Retry button once it failed for good (POST …/messages/{mid}/retry).
// A message lists its attachments (name, type, size; a link to the signed, expiring URL
// the REST API added, a thumbnail for images; "not stored" for one over the size limit) and
// folds the quoted history of an email (`ext.quoted`) behind "Show quoted text". The live
// feed carries no attachment URLs (they expire): a message with stored attachments is
// fetched through REST instead, and an expired link is renewed when clicked.
// The assignee picker ("Assign…") lists the staff on duty for the conversation's channel
// (GET /v1/staff: those whose channels cover it), who is online first, with "Assign to me"
// and "Unassign" (POST …/assign).
import { el, $, sb, clock, fullTime, slaBadge, clientId, seqCmp, displayName, channelLabel, humanSize } from './util.js';

const TYPING_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;
const PAGE = 500;
const MAX_PAGES = 20;
const PRIORITIES = ['low', 'normal', 'high', 'urgent'];
const DELIVERY_EVENTS = new Set(['delivered', 'delivery_failed', 'delivery_retry']);
// Types shown as a thumbnail (the server serves these inline).
const THUMB_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
const SIGNED_PATH = '/v1/attachments/';

// A stored attachment whose signed URL the live feed could not carry.
const needsUrl = (m) => (m.attachments || []).some((a) => a.stored && !a.url);

const SNOOZES = [
  ['1 hour', () => Date.now() + 3600e3],
  ['4 hours', () => Date.now() + 4 * 3600e3],
  ['Tomorrow 9:00', () => { const d = new Date(); d.setDate(d.getDate() + 1); d.setHours(9, 0, 0, 0); return d.getTime(); }],
  ['Next week', () => { const d = new Date(); d.setDate(d.getDate() + ((8 - d.getDay()) % 7 || 7)); d.setHours(9, 0, 0, 0); return d.getTime(); }],
];

export class ConvView {
  // ctx: {api, me(), replying(convId), nameOf(id), learnName(author), onChanged(conv),
  //       open(id), back()}
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.id = null;
    this.conv = null;
    this.msgs = [];
    this.ids = new Set();
    this.delivery = new Map(); // reply id -> its latest delivery event
    this.complete = true;
    this.mode = 'reply';
    this.typing = { active: false, sentAt: 0, idle: null };
    this.clientId = null;
    this.gen = 0;
  }

  // ---- opening and closing ----

  async open(id) {
    if (this.id === id && this.conv) return;
    this.close();
    const gen = ++this.gen;
    this.id = id;
    this.root.replaceChildren(el('p', { class: 'placeholder', role: 'status' }, 'Loading…'));
    try {
      const conv = await this.ctx.api.conversation(id);
      if (gen !== this.gen) return;
      this.conv = conv;
      this.build();
      await this.loadMessages(gen);
      if (gen !== this.gen) return;
      this.loadContact(gen);
    } catch (e) {
      if (gen !== this.gen || e.status === 401) return;
      this.root.replaceChildren(el('p', { class: 'error', role: 'alert', 'data-sb': 'conv-error' },
        e.status === 404 ? 'This conversation does not exist.' : `Could not open it: ${e.message}`));
    }
  }

  close() {
    this.stopTyping();
    this.gen++;
    this.id = null;
    this.conv = null;
    this.msgs = [];
    this.ids = new Set();
    this.delivery = new Map();
    this.clientId = null;
    this.root.replaceChildren(el('p', { class: 'placeholder', 'data-sb': 'conv-placeholder' },
      'Pick a conversation (j/k then Enter).'));
  }

  async loadMessages(gen, after = null) {
    let pages = 0;
    let next = after;
    for (;;) {
      const r = await this.ctx.api.messages(this.id, next, PAGE);
      if (gen !== this.gen) return;
      for (const m of r.items) this.add(m, false);
      next = r.next;
      if (!next || r.items.length < PAGE) { this.complete = true; break; }
      if (++pages >= MAX_PAGES) { this.complete = false; break; }
    }
    this.renderMessages();
    $(sb('load-more'), this.root).hidden = this.complete;
    this.moreAfter = next;
  }

  // Messages missed while the feed was down (after a reconnect).
  async catchUp() {
    if (!this.id || !this.complete) return;
    const gen = this.gen;
    try {
      const c = await this.ctx.api.conversation(this.id);
      if (gen !== this.gen) return;
      this.conv = c;
      this.paintHead();
      await this.loadMessages(gen, this.lastSeq());
    } catch { /* the next event or reopen fixes it */ }
  }

  async loadContact(gen) {
    const box = $(sb('contact'), this.root);
    const ct = this.conv.contact && this.conv.contact.id;
    if (!ct) return;
    try {
      const c = await this.ctx.api.contact(ct);
      if (gen !== this.gen) return;
      this.contactInfo = c; // canned replies fill {{contact.email}} from it
      const convs = (c.conversations || []).slice().sort((a, b) => b.created_at - a.created_at);
      const handles = (c.handles || []).filter((h) => !h.startsWith('visitor:'));
      // Open beside the transcript on wide screens; folded under it on a phone.
      box.replaceChildren(el('details', { open: matchMedia('(min-width: 800px)').matches },
        el('summary', {}, el('span', { class: 'ct-sum' }, 'Customer'), ' ',
          el('span', { class: 'muted' }, `${convs.length} conversation${convs.length === 1 ? '' : 's'}`)),
        el('p', { class: 'ct-name' }, c.name || 'Anonymous visitor'),
        c.email ? el('p', { class: 'ct-line' }, c.email) : null,
        // visitor:<hash> identifies a browser, not a person: nothing to show
        handles.length ? el('p', { class: 'ct-line muted' }, handles.join(', ')) : null,
        el('h3', {}, 'Conversations, every channel'),
        el('ul', { class: 'ct-convs', 'data-sb': 'contact-convs' }, convs.map((x) => el('li', {},
          el('button', {
            type: 'button', class: 'ct-conv', 'data-sb': 'contact-conv', 'data-conv': x.id,
            'aria-current': x.id === this.id ? 'true' : null, disabled: x.id === this.id,
            onclick: () => this.ctx.open(x.id),
          }, el('span', { class: `badge ch ch-${x.channel}` }, channelLabel(x.channel)), ' ',
          el('span', {}, x.subject || `${x.message_count} message${x.message_count === 1 ? '' : 's'}`), ' ',
          el('span', { class: `status st-${x.status}` }, x.status), ' ',
          el('span', { class: 'muted' }, clock(x.created_at))))))));
    } catch (e) {
      if (gen === this.gen) box.replaceChildren(el('p', { class: 'muted' }, `Customer details unavailable (${e.message}).`));
    }
  }

  // ---- layout ----

  build() {
    const c = this.conv;
    const replyLabel = 'Reply to the customer';
    this.root.replaceChildren(
      el('header', { class: 'conv-head' },
        el('div', { class: 'conv-title-row' },
          el('button', { type: 'button', class: 'ghost back', 'data-sb': 'back', onclick: () => this.ctx.back() }, '← Queue'),
          el('h2', { 'data-sb': 'conv-title' }, (c.contact && c.contact.name) || 'Anonymous visitor'),
          el('span', { class: `badge ch ch-${c.channel}` }, channelLabel(c.channel)),
          el('span', { 'data-sb': 'conv-sla-slot' })),
        el('p', { class: 'conv-status', 'data-sb': 'conv-status' }),
        el('p', { class: 'replying', 'data-sb': 'replying', 'aria-live': 'polite', hidden: true }),
        el('p', { class: 'customer-typing', 'data-sb': 'customer-typing', 'aria-live': 'polite', hidden: true }),
        el('div', { class: 'actions', role: 'toolbar', 'aria-label': 'Conversation actions' },
          el('button', { type: 'button', 'data-sb': 'claim', 'aria-keyshortcuts': 'c', onclick: () => this.claimToggle() }, 'Claim'),
          el('span', { class: 'menu-wrap' },
            el('button', { type: 'button', 'data-sb': 'assign', 'aria-haspopup': 'menu', 'aria-expanded': 'false',
              onclick: () => this.toggleAssign() }, 'Assign…'),
            el('div', { class: 'menu assign-menu', role: 'menu', 'data-sb': 'assign-menu', hidden: true,
              onkeydown: (e) => this.menuKey(e) })),
          el('button', { type: 'button', 'data-sb': 'resolve', 'aria-keyshortcuts': 'e', onclick: () => this.resolveToggle() }, 'Resolve'),
          el('span', { class: 'menu-wrap' },
            el('button', { type: 'button', 'data-sb': 'snooze', 'aria-haspopup': 'menu', 'aria-expanded': 'false',
              'aria-keyshortcuts': 's', onclick: () => this.toggleSnooze() }, 'Snooze…'),
            el('div', { class: 'menu', role: 'menu', 'data-sb': 'snooze-menu', hidden: true,
              onkeydown: (e) => this.menuKey(e) },
            SNOOZES.map(([label, at]) => el('button', { type: 'button', role: 'menuitem', 'data-sb': 'snooze-option',
              onclick: () => this.snooze(at()) }, label)),
            el('button', { type: 'button', role: 'menuitem', 'data-sb': 'unsnooze', hidden: true,
              onclick: () => { this.toggleSnooze(false); this.act('reopen'); } }, 'Wake up now'))),
          el('label', { class: 'prio-label' }, 'Priority ',
            el('select', { 'data-sb': 'priority', onchange: (e) => this.act('priority', { priority: e.target.value }) },
              PRIORITIES.map((p) => el('option', { value: p }, p))))),
        el('p', { class: 'error', role: 'alert', 'data-sb': 'conv-error', hidden: true })),
      el('div', { class: 'conv-body' },
        el('div', { class: 'transcript' },
          el('ol', { class: 'messages', 'data-sb': 'messages', role: 'log', 'aria-live': 'polite',
            'aria-relevant': 'additions', 'aria-label': 'Messages' }),
          el('button', { type: 'button', class: 'ghost more', 'data-sb': 'load-more', hidden: true,
            onclick: () => this.loadMessages(this.gen, this.moreAfter) }, 'Load more messages')),
        el('aside', { class: 'contact', 'data-sb': 'contact', 'aria-label': 'Customer' },
          el('p', { class: 'muted' }, 'Loading customer…'))),
      el('section', { class: 'conflict', 'data-sb': 'conflict', role: 'alert', hidden: true }),
      el('form', { class: 'composer', 'data-sb': 'composer', 'data-mode': 'reply',
        onsubmit: (e) => { e.preventDefault(); this.send(false); } },
      el('div', { class: 'modes', role: 'group', 'aria-label': 'Write' },
        el('button', { type: 'button', 'data-sb': 'mode-reply', 'aria-pressed': 'true', 'aria-keyshortcuts': 'r',
          onclick: () => this.setMode('reply', true) }, 'Reply'),
        el('button', { type: 'button', 'data-sb': 'mode-note', 'aria-pressed': 'false', 'aria-keyshortcuts': 'n',
          onclick: () => this.setMode('note', true) }, 'Internal note')),
      el('label', { for: 'reply-input', class: 'sr', 'data-sb': 'reply-label' }, replyLabel),
      el('textarea', { id: 'reply-input', 'data-sb': 'reply-input', rows: 3, placeholder: 'Write a reply… (Ctrl+Enter sends)',
        oninput: () => this.onInput(), onkeydown: (e) => this.onKey(e), onblur: () => this.stopTypingSoon() }),
      el('button', { type: 'submit', class: 'primary', 'data-sb': 'reply-send', 'aria-keyshortcuts': 'Control+Enter' }, 'Send')));
    this.paintHead();
  }

  paintHead() {
    const c = this.conv;
    if (!c || !$(sb('conv-status'), this.root)) return;
    const me = this.ctx.me();
    const mine = c.assignee && c.assignee === me.id;
    const who = !c.assignee ? 'unassigned' : mine ? 'assigned to you' : `assigned to ${this.ctx.nameOf(c.assignee)}`;
    let st = c.status;
    if (c.status === 'snoozed' && c.snooze_until) st = `snoozed until ${fullTime(c.snooze_until)}`;
    const status = $(sb('conv-status'), this.root);
    status.textContent = `${st} · ${who} · ${c.priority} priority`;
    status.dataset.status = c.status;
    status.dataset.assignee = c.assignee || '';
    const claim = $(sb('claim'), this.root);
    claim.textContent = mine ? 'Release' : 'Claim';
    claim.dataset.action = mine ? 'release' : 'claim';
    const resolve = $(sb('resolve'), this.root);
    resolve.textContent = c.status === 'resolved' ? 'Reopen' : 'Resolve';
    resolve.dataset.action = c.status === 'resolved' ? 'reopen' : 'resolve';
    $(sb('priority'), this.root).value = c.priority;
    $(sb('unsnooze'), this.root).hidden = c.status !== 'snoozed';
    $(sb('conv-sla-slot'), this.root).replaceChildren(slaBadge(c));
    this.paintReplying();
  }

  paintReplying() {
    if (!this.id) return;
    for (const [name, text] of [['replying', this.ctx.replying(this.id)],
      ['customer-typing', this.ctx.customerTyping(this.id)]]) {
      const r = $(`.conv-head ${sb(name)}`, this.root);
      if (!r) continue;
      r.hidden = !text;
      if (r.textContent !== (text || '')) r.textContent = text || '';
    }
  }

  // ---- transcript ----

  lastSeq() {
    return this.msgs.length ? this.msgs[this.msgs.length - 1].seq : null;
  }

  // Adds a transcript entry once; returns true when it was new.
  add(m, paint = true) {
    if (!m || !m.id || this.ids.has(m.id)) return false;
    this.ids.add(m.id);
    this.ctx.learnName(m.author);
    if (m.kind === 'event' && m.ref && DELIVERY_EVENTS.has(m.type)) this.noteDelivery(m, paint);
    const last = this.lastSeq();
    this.msgs.push(m);
    if (last && seqCmp(m.seq, last) < 0) {
      this.msgs.sort((a, b) => seqCmp(a.seq, b.seq));
      if (paint) this.renderMessages();
    } else if (paint) {
      const list = $(sb('messages'), this.root);
      if (list) { list.append(this.item(m)); this.scrollDown(); }
    }
    return true;
  }

  // Keeps the latest delivery event of a reply and repaints the reply with it.
  noteDelivery(ev, paint) {
    const prev = this.delivery.get(ev.ref);
    if (prev && seqCmp(prev.seq, ev.seq) > 0) return;
    this.delivery.set(ev.ref, ev);
    if (!paint) return;
    const m = this.msgs.find((x) => x.id === ev.ref);
    const li = m && m.dir === 'out' && $(`${sb('messages')} > li[data-id="${CSS.escape(ev.ref)}"]`, this.root);
    if (!li) return;
    const line = this.deliveryLine(m); // only the line changes: the reply is not re-announced
    const old = $(sb('delivery'), li);
    if (old) old.replaceWith(line);
    else li.append(line);
  }

  // "sent" / "failed: reason" (+ "retrying at …" or a Retry button) under a reply.
  deliveryLine(m) {
    const ev = this.delivery.get(m.id);
    if (!ev) return null;
    let state, text, retry = null;
    if (ev.type === 'delivered') {
      state = 'sent';
      text = 'sent';
    } else if (ev.type === 'delivery_retry') {
      state = 'pending';
      text = 'sending again…';
    } else {
      state = ev.final ? 'failed' : 'retrying';
      text = `failed: ${ev.reason || 'unknown reason'}`;
      if (!ev.final && ev.retry_at) text += ` · retrying at ${clock(ev.retry_at)}`;
      if (ev.final) {
        retry = el('button', { type: 'button', class: 'retry', 'data-sb': 'delivery-retry',
          onclick: (e) => this.retryDelivery(m.id, e.currentTarget) }, 'Retry');
      }
    }
    return el('div', { class: `delivery dl-${state}`, 'data-sb': 'delivery', 'data-state': state,
      title: ev.ts ? fullTime(ev.ts) : null }, el('span', {}, text), retry ? ' ' : null, retry);
  }

  async retryDelivery(mid, btn) {
    const gen = this.gen;
    btn.disabled = true;
    this.error(null);
    try {
      const r = await this.ctx.api.retry(this.id, mid);
      if (gen === this.gen && r && r.event) this.add(r.event);
    } catch (e) {
      if (gen !== this.gen || e.status === 401) return;
      btn.disabled = false;
      this.error(`Could not retry: ${e.message}`);
    }
  }

  renderMessages() {
    const list = $(sb('messages'), this.root);
    if (!list) return;
    list.replaceChildren(...this.msgs.map((m) => this.item(m)));
    this.scrollDown(true);
  }

  scrollDown(force) {
    const t = $('.transcript', this.root);
    if (!t) return;
    if (force || t.scrollHeight - t.scrollTop - t.clientHeight < 200) t.scrollTop = t.scrollHeight;
  }

  item(m) {
    const me = this.ctx.me();
    const who = displayName(m.author, me.id);
    const time = el('time', { datetime: new Date(m.ts).toISOString(), title: fullTime(m.ts) }, clock(m.ts));
    const base = { 'data-sb': 'conv-message', 'data-kind': m.kind, 'data-dir': m.dir, 'data-id': m.id, 'data-seq': m.seq };
    if (m.kind === 'event') {
      return el('li', { ...base, class: 'msg event' }, el('span', {}, eventText(m, who, (id) => this.ctx.nameOf(id))), ' ', time);
    }
    if (m.kind === 'note') {
      return el('li', { ...base, class: 'msg note', 'aria-label': `Internal note by ${who}` },
        el('div', { class: 'msg-meta' }, el('strong', { class: 'note-tag' }, 'Internal note'), ' ', who, ' · ', time),
        el('div', { class: 'msg-text' }, m.text || ''));
    }
    const role = m.dir === 'in' ? 'customer' : m.author && m.author.type === 'bot' ? 'bot' : 'staff';
    return el('li', { ...base, class: `msg ${m.dir === 'in' ? 'in' : 'out'} by-${role}` },
      el('div', { class: 'msg-meta' }, el('strong', {}, who),
        m.author && m.author.type === 'bot' ? ' (bot)' : '', ' · ', time,
        m.channel && this.conv && m.channel !== this.conv.channel ? ` · via ${channelLabel(m.channel)}` : '',
        postLink(m)),
      m.subject ? el('div', { class: 'msg-subject' }, m.subject) : null,
      el('div', { class: 'msg-text' }, m.text || ''),
      quotedPart(m),
      (m.attachments || []).length ? el('ul', { class: 'attachments', 'data-sb': 'attachments' },
        m.attachments.map((a) => this.attachment(m, a))) : null,
      m.dir === 'out' ? this.deliveryLine(m) : null);
  }

  // One attachment: a link to its signed URL (a thumbnail for images), or why there is none.
  attachment(m, a) {
    const name = a.name || a.filename || 'attachment';
    const meta = [a.type, humanSize(a.size)].filter(Boolean).join(', ');
    const info = meta ? el('span', { class: 'att-meta muted' }, ` (${meta})`) : null;
    const base = { class: 'attachment', 'data-sb': 'attachment', 'data-stored': String(a.stored !== false) };
    if (a.stored === false) {
      return el('li', base, el('span', { class: 'att-name' }, name), info,
        el('span', { class: 'att-missing', 'data-sb': 'attachment-missing' }, ' · not stored (too large)'));
    }
    // Only our own signed URLs become links (a bot's url is shown as text, as before).
    const url = typeof a.url === 'string' && a.url.startsWith(SIGNED_PATH) ? a.url : null;
    if (!url) return el('li', base, el('span', { class: 'att-name' }, name), info);
    const thumb = THUMB_TYPES.has(String(a.type).toLowerCase())
      ? el('img', { class: 'att-thumb', 'data-sb': 'attachment-thumb', src: url, alt: '', loading: 'lazy' }) : null;
    return el('li', base, el('a', {
      href: url, target: '_blank', rel: 'noopener noreferrer', class: 'att-link', 'data-sb': 'attachment-link',
      onclick: (e) => this.openAttachment(e, m, a),
    }, thumb, el('span', { class: 'att-name' }, name)), info);
  }

  // A link past its expiry is renewed first (a fresh listing of that message), then opened.
  async openAttachment(e, m, a) {
    const exp = Number(new URL(a.url, location.href).searchParams.get('exp')) || 0;
    if (exp * 1000 > Date.now() + 5000) return; // still good: the browser follows it
    e.preventDefault();
    const gen = this.gen;
    try {
      const i = this.msgs.findIndex((x) => x.id === m.id);
      const r = await this.ctx.api.messages(this.id, i > 0 ? this.msgs[i - 1].seq : null, 1);
      const fresh = gen === this.gen && r.items.find((x) => x.id === m.id);
      if (!fresh) return;
      this.msgs[i] = fresh;
      const li = $(`${sb('messages')} > li[data-id="${CSS.escape(m.id)}"]`, this.root);
      if (li) li.replaceWith(this.item(fresh));
      const again = (fresh.attachments || []).find((x) => x.sha256 === a.sha256 && x.url);
      if (again) window.open(again.url, '_blank', 'noopener');
    } catch (err) {
      if (gen === this.gen && err.status !== 401) this.error(`Could not open the attachment: ${err.message}`);
    }
  }

  // A live event of this conversation (type message/note/event).
  onEvent(ev) {
    if (ev.conv !== this.id || !this.conv) return;
    if (ev.conversation) Object.assign(this.conv, ev.conversation);
    if (this.complete && ev.message && !this.ids.has(ev.message.id) && needsUrl(ev.message)) {
      this.loadMessages(this.gen, this.lastSeq()).catch(() => {}); // through REST: signed URLs
    } else if (this.complete) {
      this.add(ev.message);
    }
    this.paintHead();
  }

  // ---- actions ----

  error(text) {
    const e = $(sb('conv-error'), this.root);
    if (!e) return;
    e.replaceChildren(...(Array.isArray(text) ? text : [text || '']));
    e.hidden = !text;
  }

  async act(action, body = {}) {
    if (!this.id) return null;
    const gen = this.gen;
    this.error(null);
    try {
      const r = await this.ctx.api.act(this.id, action, body);
      if (gen !== this.gen) return r;
      if (r && r.conversation) this.conv = r.conversation;
      if (r && r.event) this.add(r.event);
      this.paintHead();
      this.ctx.onChanged(this.conv);
      return r;
    } catch (e) {
      if (gen !== this.gen || e.status === 401) return null;
      if (action === 'claim' && e.status === 409 && !body.steal) {
        const me = this.ctx.me();
        const holder = this.conv && this.conv.assignee ? this.ctx.nameOf(this.conv.assignee) : 'someone else';
        this.error([`${holder === 'a colleague' ? 'A colleague' : holder} already holds this conversation. `,
          me.role === 'admin' ? el('button', { type: 'button', 'data-sb': 'steal',
            onclick: () => this.act('claim', { steal: true }) }, 'Take it over') : null]);
      } else {
        this.error(`Could not ${action}: ${e.message}`);
      }
      if (this.conv) this.paintHead();
      return null;
    }
  }

  // The assignee picker: filled from GET /v1/staff each time it opens.
  async toggleAssign(open) {
    const menu = $(sb('assign-menu'), this.root);
    const btn = $(sb('assign'), this.root);
    if (!menu) return;
    const show = open === undefined ? menu.hidden : open;
    menu.hidden = !show;
    btn.setAttribute('aria-expanded', String(show));
    if (!show) return;
    const gen = this.gen;
    menu.replaceChildren(el('p', { class: 'muted', role: 'status' }, 'Loading…'));
    let items;
    try { items = await this.ctx.api.staff(); } catch (e) {
      if (gen === this.gen) menu.replaceChildren(el('p', { class: 'error' }, `Could not load staff: ${e.message}`));
      return;
    }
    if (gen !== this.gen || menu.hidden) return;
    const me = this.ctx.me();
    const c = this.conv;
    for (const m of items) this.ctx.learnName({ ...m, type: 'staff' });
    const onDuty = items.filter((m) => m.id !== me.id && (!m.channels || m.channels.includes(c.channel)));
    const pick = (to) => { this.toggleAssign(false); this.assign(to); };
    menu.replaceChildren(
      el('button', { type: 'button', role: 'menuitem', 'data-sb': 'assign-me', disabled: c.assignee === me.id,
        onclick: () => pick(me.id) }, 'Assign to me'),
      el('button', { type: 'button', role: 'menuitem', 'data-sb': 'unassign', disabled: !c.assignee,
        onclick: () => pick(null) }, 'Unassign'),
      ...onDuty.map((m) => el('button', { type: 'button', role: 'menuitem', 'data-sb': 'assign-option',
        'data-id': m.id, 'data-online': String(!!m.online), 'aria-current': c.assignee === m.id ? 'true' : null,
        onclick: () => pick(m.id) },
      el('span', { class: m.online ? 'dot online' : 'dot', 'aria-hidden': 'true' }, m.online ? '●' : '○'), ' ',
      m.name || m.id, m.online ? el('span', { class: 'sr' }, ' (online)') : null)),
      onDuty.length ? null : el('p', { class: 'muted', 'data-sb': 'assign-none' }, 'No colleague serves this channel'));
    const first = menu.querySelector('button:not([disabled])');
    if (first) first.focus();
  }

  assign(to) { return this.act('assign', { to }); }

  claimToggle() {
    const a = $(sb('claim'), this.root);
    return a ? this.act(a.dataset.action || 'claim') : null;
  }

  resolveToggle() {
    const a = $(sb('resolve'), this.root);
    return a ? this.act(a.dataset.action || 'resolve') : null;
  }

  toggleSnooze(open) {
    const menu = $(sb('snooze-menu'), this.root);
    const btn = $(sb('snooze'), this.root);
    if (!menu) return;
    const show = open === undefined ? menu.hidden : open;
    menu.hidden = !show;
    btn.setAttribute('aria-expanded', String(show));
    if (show) menu.querySelector('button:not([hidden])').focus();
  }

  menuKey(e) {
    const items = Array.from(e.currentTarget.querySelectorAll('button:not([hidden]):not([disabled])'));
    const i = items.indexOf(document.activeElement);
    if (e.key === 'ArrowDown' || e.key === 'j') { items[(i + 1) % items.length].focus(); e.preventDefault(); }
    else if (e.key === 'ArrowUp' || e.key === 'k') { items[(i - 1 + items.length) % items.length].focus(); e.preventDefault(); }
    else if (e.key === 'Escape') {
      const assign = e.currentTarget.dataset.sb === 'assign-menu';
      if (assign) this.toggleAssign(false); else this.toggleSnooze(false);
      $(sb(assign ? 'assign' : 'snooze'), this.root).focus();
      e.preventDefault();
    }
    e.stopPropagation();
  }

  snooze(until) {
    this.toggleSnooze(false);
    return this.act('snooze', { until });
  }

  // ---- composer ----

  setMode(mode, focus) {
    const form = $(sb('composer'), this.root);
    if (!form) return;
    if (mode === 'note') this.stopTyping();
    this.mode = mode;
    form.dataset.mode = mode;
    $(sb('mode-reply'), form).setAttribute('aria-pressed', String(mode === 'reply'));
    $(sb('mode-note'), form).setAttribute('aria-pressed', String(mode === 'note'));
    $(sb('reply-label'), form).textContent = mode === 'note' ? 'Internal note (staff only)' : 'Reply to the customer';
    const input = $(sb('reply-input'), form);
    input.placeholder = mode === 'note' ? 'Internal note — only staff see it (Ctrl+Enter adds it)'
      : 'Write a reply… (Ctrl+Enter sends)';
    $(sb('reply-send'), form).textContent = mode === 'note' ? 'Add note' : 'Send';
    if (focus) input.focus();
  }

  onKey(e) {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      this.send(false);
    } else if (e.key === 'Escape') {
      e.target.blur();
    }
  }

  onInput() {
    this.clientId = null; // a changed text is a new message
    if (this.mode !== 'reply' || !this.id) return;
    const input = $(sb('reply-input'), this.root);
    if (!input.value.trim()) { this.stopTyping(); return; }
    const now = Date.now();
    if (now - this.typing.sentAt >= TYPING_EVERY_MS) {
      this.typing.sentAt = now;
      this.typing.active = true;
      this.ctx.api.typing(this.id, true).catch(() => {});
    }
    clearTimeout(this.typing.idle);
    this.typing.idle = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTypingSoon() {
    clearTimeout(this.typing.idle);
    this.typing.idle = setTimeout(() => this.stopTyping(), 1000);
  }

  stopTyping() {
    clearTimeout(this.typing.idle);
    if (this.typing.active && this.id) this.ctx.api.typing(this.id, false).catch(() => {});
    this.typing.active = false;
    this.typing.sentAt = 0;
  }

  async send(force) {
    const form = $(sb('composer'), this.root);
    if (!form || !this.id) return;
    const input = $(sb('reply-input'), form);
    const text = input.value.trim();
    if (!text) { input.focus(); return; }
    const note = this.mode === 'note';
    const btn = $(sb('reply-send'), form);
    const gen = this.gen;
    if (!this.clientId) this.clientId = clientId();
    const body = { text, client_id: this.clientId };
    if (!note) {
      const last = this.lastSeq();
      if (last) body.based_on = last;
      if (force) body.force = true;
    }
    btn.disabled = true;
    this.error(null);
    try {
      const m = note ? await this.ctx.api.note(this.id, body) : await this.ctx.api.reply(this.id, body);
      if (gen !== this.gen) return;
      if (!note) this.stopTyping();
      input.value = '';
      this.clientId = null;
      this.hideConflict();
      this.add(m);
      this.ctx.onChanged(this.conv);
    } catch (e) {
      if (gen !== this.gen || e.status === 401) return;
      if (e.status === 409 && !note) {
        this.clientId = null;
        this.showConflict(((e.body && e.body.error && e.body.error.messages) || []));
      } else {
        this.error(`Not sent: ${e.message}`);
      }
    } finally {
      btn.disabled = false;
    }
  }

  showConflict(newer) {
    for (const m of newer) this.add(m);
    const box = $(sb('conflict'), this.root);
    const me = this.ctx.me();
    box.replaceChildren(
      el('p', {}, el('strong', {}, 'Not sent: '),
        `${newer.length} newer message${newer.length === 1 ? '' : 's'} arrived while you were writing. Read ${newer.length === 1 ? 'it' : 'them'} first:`),
      el('ol', { class: 'conflict-list' }, newer.map((m) => el('li', { 'data-sb': 'conflict-message' },
        el('strong', {}, displayName(m.author, me.id)), ': ', m.text || ''))),
      el('div', { class: 'conflict-actions' },
        el('button', { type: 'button', class: 'primary', 'data-sb': 'send-anyway', onclick: () => this.send(true) }, 'Send anyway'),
        el('button', { type: 'button', 'data-sb': 'conflict-edit', onclick: () => {
          this.hideConflict(); $(sb('reply-input'), this.root).focus();
        } }, 'Edit my reply')));
    box.hidden = false;
  }

  hideConflict() {
    const box = $(sb('conflict'), this.root);
    if (box) { box.hidden = true; box.replaceChildren(); }
  }

  focusReply() { this.setMode('reply', true); }
  focusNote() { this.setMode('note', true); }
}

function eventText(m, who, nameOf) {
  switch (m.type) {
    case 'created': return 'Conversation started';
    case 'claimed': return `${who} claimed it`;
    case 'released': return `${who} released it`;
    case 'assigned': return m.to ? `${who} assigned it to ${nameOf(m.to)}` : `${who} unassigned it`;
    case 'resolved': return `${who} resolved it`;
    case 'reopened': return `${who} reopened it`;
    case 'snoozed': return `${who} snoozed it until ${fullTime(m.until)}`;
    case 'woke': return 'Woke up from snooze';
    case 'priority': return `${who} set priority to ${m.priority}`;
    case 'tagged': return `${who} set tags: ${(m.tags || []).join(', ') || 'none'}`;
    case 'handoff': return `${who} handed it to humans${m.reason ? `: ${m.reason}` : ''}`;
    case 'merged': return 'Merged from another contact';
    case 'delivered': return `Reply delivered${m.channel ? ` by ${channelLabel(m.channel)}` : ''}`;
    case 'delivery_failed': return `Reply not delivered: ${m.reason || 'unknown reason'}${m.final ? '' : ' (will retry)'}`;
    case 'delivery_retry': return `${who} retried a reply's delivery`;
    default: return `${m.type || 'event'}${who ? ` by ${who}` : ''}`;
  }
}

// An email's quoted history (`ext.quoted`), folded: shown as text, never as HTML.
// A social post's own page (Mastodon, Bluesky) and whether it was a direct message: the
// original under which the answer appears. Only http(s) links, opened apart.
function postLink(m) {
  const ext = m.ext || {};
  const parts = [];
  if (ext.visibility === 'direct') parts.push(' · ', el('span', { class: 'badge', 'data-sb': 'direct' }, 'direct message'));
  if (typeof ext.url === 'string' && /^https?:\/\//.test(ext.url)) {
    parts.push(' · ', el('a', { href: ext.url, target: '_blank', rel: 'noopener noreferrer', 'data-sb': 'post-link' },
      `on ${channelLabel(m.channel)}`));
  }
  return parts.length ? el('span', {}, ...parts) : '';
}

function quotedPart(m) {
  const q = m.ext && typeof m.ext.quoted === 'string' ? m.ext.quoted : '';
  if (!q.trim()) return null;
  const label = el('summary', { class: 'quoted-toggle', 'data-sb': 'quoted-toggle' }, 'Show quoted text');
  return el('details', {
    class: 'quoted', 'data-sb': 'quoted',
    ontoggle: (e) => { label.textContent = e.currentTarget.open ? 'Hide quoted text' : 'Show quoted text'; },
  }, label, el('div', { class: 'quoted-text', 'data-sb': 'quoted-text' }, q));
}
