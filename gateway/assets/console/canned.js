// SPDX-License-Identifier: MIT
// Canned replies in the console (docs/canned.md): the picker of the reply box (typing `/`
// at the start of a word lists the matching replies; arrow keys and Enter, or a click,
// insert the chosen one with its placeholders filled in; Escape closes) and the "Canned
// replies" view (location.hash `#/canned`: list, add, edit, delete). Texts go into the
// page as text only; the logic is in canned_fill.js.
import { el, $, sb } from './util.js';
import { fill, slashAt, match, replaceSpan } from './canned_fill.js';

const REFRESH_MS = 30000;

// The list of GET /v1/canned, kept for the picker and refreshed when older than REFRESH_MS.
class CannedStore {
  constructor(ctx) { this.ctx = ctx; this.items = []; this.at = 0; this.loading = null; }

  invalidate() { this.at = 0; }

  async load(force = false) {
    if (!force && Date.now() - this.at < REFRESH_MS) return this.items;
    if (!this.loading) {
      this.loading = this.ctx.api.get('/v1/canned').then((r) => {
        this.items = (r && r.items) || [];
        this.at = Date.now();
        return this.items;
      }).finally(() => { this.loading = null; });
    }
    return this.loading;
  }
}

export class CannedPicker {
  // ctx: {api, values() → {contact:{name,email}, agent:{name}, conversation:{id}}}; store: CannedStore.
  constructor(ctx, store) {
    this.ctx = ctx;
    this.store = store;
    this.input = null;
    this.span = null;
    this.shown = [];
    this.active = 0;
    this.list = el('ul', { class: 'canned-pick', role: 'listbox', 'data-sb': 'canned-pick',
      'aria-label': 'Canned replies', hidden: true });
    // Capture: the picker's keys win over the composer's own (Enter, Escape).
    document.addEventListener('keydown', (e) => this.onKey(e), true);
    document.addEventListener('input', (e) => this.onInput(e));
    document.addEventListener('focusout', (e) => {
      if (e.target === this.input && !this.list.contains(e.relatedTarget)) this.close();
    });
  }

  isReplyBox(t) { return t instanceof HTMLTextAreaElement && t.matches(sb('reply-input')); }

  async onInput(e) {
    if (!this.isReplyBox(e.target) || e.isCanned) return;
    const input = e.target;
    const span = slashAt(input.value, input.selectionStart);
    if (!span) { this.close(); return; }
    this.input = input;
    this.span = span;
    let items = this.store.items;
    this.render(items);
    try { items = await this.store.load(); } catch { return; }
    if (this.input === input && this.span === span) this.render(items);
  }

  render(items) {
    this.shown = match(items, this.span.query);
    if (!this.shown.length) { this.list.hidden = true; return; } // the list may still load
    this.active = Math.min(this.active, this.shown.length - 1);
    this.list.replaceChildren(...this.shown.map((it, i) => el('li', {
      role: 'option', 'data-sb': 'canned-option', 'data-shortcut': it.shortcut,
      'aria-selected': String(i === this.active), class: i === this.active ? 'active' : '',
      onmousedown: (e) => { e.preventDefault(); this.pick(i); },
    }, el('span', { class: 'canned-sc' }, `/${it.shortcut}`), ' ',
    el('span', { class: 'canned-title' }, it.title || ''), el('span', { class: 'canned-text muted' }, it.text))));
    if (this.list.parentNode !== this.input.parentNode) this.input.before(this.list);
    this.list.hidden = false;
    this.input.setAttribute('aria-expanded', 'true');
  }

  close() {
    this.list.hidden = true;
    this.active = 0;
    this.span = null;
    if (this.input) this.input.setAttribute('aria-expanded', 'false');
  }

  onKey(e) {
    if (this.list.hidden || !this.span || e.target !== this.input) return;
    const n = this.shown.length;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      this.active = (this.active + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
      this.render(this.store.items);
    } else if ((e.key === 'Enter' && !e.ctrlKey && !e.metaKey) || e.key === 'Tab') {
      this.pick(this.active);
    } else if (e.key === 'Escape') {
      this.close();
    } else {
      return;
    }
    e.preventDefault();
    e.stopPropagation();
  }

  // Inserts reply i, filled in, in place of the `/word`; the agent can still edit it.
  pick(i) {
    const it = this.shown[i];
    if (!it || !this.span) return;
    const r = replaceSpan(this.input.value, this.span, fill(it.text, this.ctx.values()));
    this.input.value = r.text;
    this.input.setSelectionRange(r.caret, r.caret);
    this.close();
    this.input.focus();
    const ev = new Event('input', { bubbles: true });
    ev.isCanned = true; // the composer hears the change; the picker does not reopen
    this.input.dispatchEvent(ev);
  }
}

export class CannedView {
  // root: the [data-sb=canned] section; ctx: {api, me() → the token's record}; store: CannedStore.
  constructor(root, ctx, store) {
    this.root = root;
    this.ctx = ctx;
    this.store = store;
    this.form = $(sb('canned-form'), root);
    this.form.addEventListener('submit', (e) => { e.preventDefault(); this.save(); });
    $(sb('canned-cancel'), root).addEventListener('click', () => this.edit(null));
  }

  error(text) {
    const p = $(sb('canned-error'), this.root);
    p.textContent = text || '';
    p.hidden = !text;
  }

  async open() {
    this.error(null);
    try {
      this.paint(await this.store.load(true));
    } catch (e) {
      this.error(e.message);
    }
  }

  paint(items) {
    const me = this.ctx.me() || {};
    const list = $(sb('canned-list'), this.root);
    $(sb('canned-empty'), this.root).hidden = items.length > 0;
    list.replaceChildren(...items.map((it) => el('li', { class: 'canned-item', 'data-sb': 'canned-item',
      'data-shortcut': it.shortcut },
    el('div', { class: 'canned-row' },
      el('strong', { class: 'canned-sc' }, `/${it.shortcut}`), ' ',
      el('span', { class: 'canned-title' }, it.title || ''),
      el('button', { type: 'button', class: 'ghost', 'data-sb': 'canned-edit', onclick: () => this.edit(it) }, 'Edit'),
      (me.role === 'admin' || it.created_by === me.id)
        ? el('button', { type: 'button', class: 'ghost', 'data-sb': 'canned-delete', onclick: () => this.remove(it) }, 'Delete')
        : null),
    el('p', { class: 'canned-text' }, it.text))));
  }

  edit(it) {
    const f = this.form.elements;
    f.shortcut.value = it ? it.shortcut : '';
    f.shortcut.readOnly = !!it;
    f.title.value = it ? it.title || '' : '';
    f.text.value = it ? it.text : '';
    $(sb('canned-save'), this.root).textContent = it ? 'Save changes' : 'Add';
    $(sb('canned-cancel'), this.root).hidden = !it;
    this.error(null);
    if (it) f.text.focus();
  }

  async save() {
    const f = this.form.elements;
    const shortcut = f.shortcut.value.trim().replace(/^\//, '');
    if (!/^[a-z0-9_-]{1,32}$/.test(shortcut)) {
      this.error('The shortcut is 1 to 32 characters of a-z, 0-9, _ and -.');
      return;
    }
    this.error(null);
    try {
      await this.ctx.api.request('PUT', `/v1/canned/${shortcut}`, { title: f.title.value.trim(), text: f.text.value });
      this.store.invalidate();
      this.edit(null);
      await this.open();
    } catch (e) {
      this.error(e.message);
    }
  }

  async remove(it) {
    if (!window.confirm(`Delete /${it.shortcut}?`)) return;
    try {
      await this.ctx.api.request('DELETE', `/v1/canned/${it.shortcut}`);
      this.store.invalidate();
      await this.open();
    } catch (e) {
      this.error(e.message);
    }
  }
}

export function cannedStore(ctx) { return new CannedStore(ctx); }
