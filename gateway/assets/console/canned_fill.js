// SPDX-License-Identifier: MIT
// The logic of canned replies in the console, free of the DOM so it is tested on its own
// (tests/e2e/canned_fill.test.mjs): placeholders filled in on insertion (docs/canned.md),
// the `/shortcut` word being typed in the reply box, and which replies match it.

// The placeholders the console fills in, each read from the values passed to fill().
export const PLACEHOLDERS = ['contact.name', 'contact.email', 'agent.name', 'conversation.id'];

const PLACEHOLDER_RE = /\{\{\s*([a-z]+\.[a-z]+)\s*\}\}/g;

// text with every known placeholder replaced by its value from `values`
// ({contact:{name,email}, agent:{name}, conversation:{id}}); a missing value becomes "",
// an unknown placeholder stays as it is (a typo stays visible).
export function fill(text, values = {}) {
  return String(text).replace(PLACEHOLDER_RE, (whole, name) => {
    if (!PLACEHOLDERS.includes(name)) return whole;
    const [obj, key] = name.split('.');
    const v = values[obj] && values[obj][key];
    return typeof v === 'string' || typeof v === 'number' ? String(v) : '';
  });
}

// The `/word` being typed at caret in text, at the start of the text or after white
// space: {start, end, query} (start: the slash's index), or null.
export function slashAt(text, caret) {
  const before = text.slice(0, caret);
  const m = /(^|\s)\/([a-z0-9_-]{0,32})$/.exec(before);
  if (!m) return null;
  return { start: caret - m[2].length - 1, end: caret, query: m[2] };
}

// The replies matching query, best first: shortcuts starting with it, then shortcuts or
// titles containing it (case-insensitive for titles); at most limit.
export function match(items, query, limit = 8) {
  const q = query.toLowerCase();
  const starts = [];
  const contains = [];
  for (const it of items) {
    if (it.shortcut.startsWith(q)) starts.push(it);
    else if (it.shortcut.includes(q) || (it.title || '').toLowerCase().includes(q)) contains.push(it);
  }
  return starts.concat(contains).slice(0, limit);
}

// text with the `/word` span (from slashAt) replaced by insert: {text, caret}.
export function replaceSpan(text, span, insert) {
  return { text: text.slice(0, span.start) + insert + text.slice(span.end), caret: span.start + insert.length };
}
