// SPDX-License-Identifier: MIT
// A fake Mastodon server for tests, written from the Mastodon REST and streaming API
// documentation (docs/mastodon.md says which calls Switchboard makes). One account is
// "ours" (the one the token belongs to); customers are other accounts, local ("alice") or
// remote ("bob@remote.example"), whose mentions and direct messages a test creates through
// the control API. Node's http only, no package.
//
// Served as Mastodon does (Authorization: Bearer <token>, else 401 {"error":…}):
//   GET  /api/v1/accounts/verify_credentials   our Account
//   GET  /api/v2/instance                      configuration.statuses.max_characters,
//                                              characters_reserved_per_url, urls.streaming
//   GET  /api/v1/notifications                 newest first; max_id (older than), since_id
//                                              (newer than), min_id (just newer than: the
//                                              oldest page after it), limit (40, at most
//                                              80), types[]; Link rel="next" (max_id = the
//                                              page's oldest) and rel="prev" (min_id = its
//                                              newest), keeping types[] and limit
//   GET  /api/v1/statuses/:id/context          {ancestors (oldest first), descendants}
//   POST /api/v1/statuses                      JSON or form: status, in_reply_to_id,
//                                              visibility; Idempotency-Key: the same key
//                                              gives the same status back; 422 over
//                                              max_characters (URLs weigh 23, @user@host
//                                              as @user, graphemes counted)
//   GET  /api/v1/streaming/user                text/event-stream: ":)" first, ":thump"
//                                              every heartbeatMs, "event: notification"
//                                              + "data: <Notification JSON>"
// Control (no auth), for tests:
//   POST /_control/mention {from, text, visibility?, in_reply_to_id?}  → {status, notification}
//        from: {username, host?, display_name?} (host absent: a local account)
//   POST /_control/drop                 ends every open stream
//   POST /_control/silent               open streams send nothing more (no heartbeat either)
//   POST /_control/fail {count, code, path?, headers?, error?}  the next count requests
//        (whose path starts with path) answer code
//   POST /_control/token {token}        the token that is valid from now on
//   POST /_control/hang {on}            POST /api/v1/statuses stores the status but never answers
//   POST /_control/slow {ms, path}      requests whose path starts with path wait ms first
//                                       (the answer is computed after the wait); ms 0 ends it
//   GET  /_control/statuses             the statuses we posted, oldest first
//   GET  /_control/state                {streams, stream_connects, requests: [method path]}
import http from 'node:http';

const seg = new Intl.Segmenter('en', { granularity: 'grapheme' });

function escapeHtml(s) {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

export class FakeMastodon {
  constructor({ maxCharacters = 500, heartbeatMs = 15000, token = 'tok-good' } = {}) {
    this.maxCharacters = maxCharacters;
    this.heartbeatMs = heartbeatMs;
    this.token = token;
    this.nextId = 109000000000000000n;
    this.statuses = new Map(); // id -> Status
    this.notifications = []; // oldest first
    this.posted = []; // ours, oldest first
    this.idem = new Map(); // Idempotency-Key -> status id
    this.streams = new Set();
    this.streamConnects = 0;
    this.fails = [];
    this.hang = false;
    this.slow = null;
    this.requests = [];
  }

  async start() {
    this.server = http.createServer((req, res) => this.route(req, res));
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = this.server.address().port;
    this.host = `127.0.0.1:${this.port}`;
    this.url = `http://${this.host}`;
    this.me = this.account('support', null, 'Support Team');
    return this;
  }

  async close() {
    for (const s of this.streams) s.res.destroy();
    this.streams.clear();
    this.server.closeAllConnections?.();
    await new Promise((r) => this.server.close(r));
  }

  id() { this.nextId += 1n; return this.nextId.toString(); }

  account(username, host, displayName) {
    const acct = host ? `${username}@${host}` : username;
    const base = host ? `https://${host}` : this.url;
    return {
      id: this.id(), username, acct, display_name: displayName ?? '', url: `${base}/@${username}`,
      locked: false, bot: false, created_at: new Date().toISOString(),
    };
  }

  // The HTML Mastodon makes of a plain text: paragraphs, line breaks, mentions, links, tags.
  html(text, mentions) {
    const inline = (line) => line.split(/(\s+)/).map((w) => {
      let m = /^@([A-Za-z0-9_]+)(?:@([A-Za-z0-9.:-]+))?$/.exec(w);
      if (m) {
        const acct = m[2] ? `${m[1]}@${m[2]}` : m[1];
        const who = mentions.find((x) => x.acct === acct || x.acct === m[1]);
        if (who) {
          return `<span class="h-card" translate="no"><a href="${escapeHtml(who.url)}" ` +
            `class="u-url mention">@<span>${escapeHtml(who.username)}</span></a></span>`;
        }
      }
      m = /^#(\w+)$/.exec(w);
      if (m) {
        return `<a href="${this.url}/tags/${m[1]}" class="mention hashtag" rel="tag">#<span>${m[1]}</span></a>`;
      }
      if (/^https?:\/\/\S+$/.test(w)) {
        const [, scheme, rest] = /^(https?:\/\/)(.*)$/.exec(w);
        return `<a href="${escapeHtml(w)}" target="_blank" rel="nofollow noopener noreferrer">` +
          `<span class="invisible">${scheme}</span><span class="ellipsis">${escapeHtml(rest.slice(0, 30))}</span>` +
          `<span class="invisible">${escapeHtml(rest.slice(30))}</span></a>`;
      }
      return escapeHtml(w);
    }).join('');
    return text.split(/\n{2,}/).map((p) => `<p>${p.split('\n').map(inline).join('<br />')}</p>`).join('');
  }

  // Mastodon's length: graphemes, a URL as 23, a mention @user@host as @user.
  weight(text) {
    const t = text.replace(/https?:\/\/\S+/g, 'x'.repeat(23))
      .replace(/@([A-Za-z0-9_]+)@[A-Za-z0-9.:-]+/g, '@$1');
    return [...seg.segment(t)].length;
  }

  mentionsIn(text) {
    const out = [];
    for (const m of text.matchAll(/(^|\s)@([A-Za-z0-9_]+)(?:@([A-Za-z0-9.:-]+))?/g)) {
      const local = !m[3] || m[3] === this.host;
      if (local && m[2] === this.me.username) out.push(this.mentionOf(this.me));
      else {
        const a = [...this.accounts()].find((x) => x.acct === (local ? m[2] : `${m[2]}@${m[3]}`));
        if (a) out.push(this.mentionOf(a));
      }
    }
    return out;
  }

  *accounts() { for (const s of this.statuses.values()) yield s.account; }

  mentionOf(a) { return { id: a.id, username: a.username, url: a.url, acct: a.acct }; }

  status(account, text, { visibility = 'public', in_reply_to_id = null } = {}) {
    const id = this.id();
    const mentions = this.mentionsIn(text);
    const parent = in_reply_to_id ? this.statuses.get(in_reply_to_id) : null;
    const s = {
      id, created_at: new Date().toISOString(), in_reply_to_id,
      in_reply_to_account_id: parent ? parent.account.id : null, sensitive: false,
      spoiler_text: '', visibility, language: 'en', uri: `${this.url}/users/${account.username}/statuses/${id}`,
      url: `${account.url}/${id}`, replies_count: 0, reblogs_count: 0, favourites_count: 0,
      content: this.html(text, mentions), account, media_attachments: [], mentions, tags: [],
      emojis: [], card: null, poll: null, text,
    };
    this.statuses.set(id, s);
    return s;
  }

  // A customer mentions us (a direct message too: visibility "direct").
  mention({ from, text, visibility = 'public', in_reply_to_id = null }) {
    let account = [...this.accounts()].find((a) => a.acct === (from.host ? `${from.username}@${from.host}` : from.username));
    if (!account) account = this.account(from.username, from.host, from.display_name);
    const body = text.includes(`@${this.me.username}`) ? text : `@${this.me.username} ${text}`;
    const status = this.status(account, body, { visibility, in_reply_to_id });
    const n = { id: this.id(), type: 'mention', created_at: status.created_at, account, status };
    this.notifications.push(n);
    this.emit('notification', n);
    return { status, notification: n };
  }

  emit(event, payload) {
    const frame = `event: ${event}\ndata: ${JSON.stringify(payload)}\n\n`;
    for (const s of this.streams) if (!s.silent) s.res.write(frame);
  }

  send(res, code, body, headers = {}) {
    res.writeHead(code, { 'content-type': 'application/json; charset=utf-8', ...headers });
    res.end(JSON.stringify(body));
    return true;
  }

  authorized(req) {
    return req.headers.authorization === `Bearer ${this.token}`;
  }

  async body(req) {
    let raw = '';
    for await (const c of req) raw += c;
    if ((req.headers['content-type'] || '').startsWith('application/json')) return raw ? JSON.parse(raw) : {};
    return Object.fromEntries(new URLSearchParams(raw));
  }

  async route(req, res) {
    const u = new URL(req.url, this.url);
    try {
      if (u.pathname.startsWith('/_control/')) return await this.control(req, res, u);
      this.requests.push(`${req.method} ${u.pathname}${u.search}`);
      const f = this.fails.find((x) => x.count > 0 && u.pathname.startsWith(x.path || '/'));
      if (f) {
        f.count--;
        return this.send(res, f.code, { error: f.error || `failure ${f.code} (scripted)` }, f.headers || {});
      }
      if (this.slow && u.pathname.startsWith(this.slow.path || '/')) {
        await new Promise((r) => {
          const t = setTimeout(r, this.slow.ms);
          res.on('close', () => { clearTimeout(t); r(); });
        });
        if (res.destroyed) return;
      }
      if (!this.authorized(req)) return this.send(res, 401, { error: 'The access token is invalid' });
      const r = await this.api(req, res, u);
      if (r === undefined) this.send(res, 404, { error: 'Record not found' });
    } catch (e) {
      if (!res.headersSent) this.send(res, 500, { error: String(e) });
    }
  }

  async api(req, res, u) {
    const p = u.pathname;
    if (req.method === 'GET' && p === '/api/v1/accounts/verify_credentials') return this.send(res, 200, this.me);
    if (req.method === 'GET' && p === '/api/v2/instance') {
      return this.send(res, 200, {
        domain: this.host, title: 'Fake Mastodon', version: '4.3.0',
        configuration: {
          urls: { streaming: `ws://${this.host}` },
          statuses: { max_characters: this.maxCharacters, max_media_attachments: 4, characters_reserved_per_url: 23 },
        },
      });
    }
    if (req.method === 'GET' && p === '/api/v1/notifications') return this.listNotifications(res, u);
    let m = /^\/api\/v1\/statuses\/(\d+)\/context$/.exec(p);
    if (req.method === 'GET' && m) {
      const s = this.statuses.get(m[1]);
      if (!s) return this.send(res, 404, { error: 'Record not found' });
      const ancestors = [];
      for (let x = s; x.in_reply_to_id && this.statuses.has(x.in_reply_to_id);) {
        x = this.statuses.get(x.in_reply_to_id);
        ancestors.unshift(x);
      }
      const descendants = [...this.statuses.values()].filter((x) => x.in_reply_to_id === s.id);
      return this.send(res, 200, { ancestors, descendants });
    }
    m = /^\/api\/v1\/statuses\/(\d+)$/.exec(p);
    if (req.method === 'GET' && m) {
      const s = this.statuses.get(m[1]);
      return s ? this.send(res, 200, s) : this.send(res, 404, { error: 'Record not found' });
    }
    if (req.method === 'POST' && p === '/api/v1/statuses') return this.postStatus(req, res);
    if (req.method === 'GET' && p === '/api/v1/streaming/user') return this.stream(req, res);
    return undefined;
  }

  listNotifications(res, u) {
    const q = u.searchParams;
    const types = q.getAll('types[]');
    const limit = Math.min(Math.max(parseInt(q.get('limit') || '40', 10) || 40, 1), 80);
    const big = (v) => (v ? BigInt(v) : null);
    const maxId = big(q.get('max_id')), sinceId = big(q.get('since_id')), minId = big(q.get('min_id'));
    let items = this.notifications.filter((n) => (!types.length || types.includes(n.type))
      && (maxId === null || BigInt(n.id) < maxId)
      && (sinceId === null || BigInt(n.id) > sinceId)
      && (minId === null || BigInt(n.id) > minId));
    // newest first; min_id takes the page just after it, since_id the newest page
    items = minId !== null ? items.slice(0, limit).reverse() : items.reverse().slice(0, limit);
    const headers = {};
    if (items.length) {
      const keep = new URLSearchParams();
      for (const t of types) keep.append('types[]', t);
      if (q.get('limit')) keep.set('limit', String(limit));
      const link = (k, v) => {
        const x = new URLSearchParams(keep);
        x.set(k, v);
        return `${this.url}/api/v1/notifications?${x}`;
      };
      headers.link = `<${link('max_id', items[items.length - 1].id)}>; rel="next", ` +
        `<${link('min_id', items[0].id)}>; rel="prev"`;
    }
    return this.send(res, 200, items, headers);
  }

  async postStatus(req, res) {
    const b = await this.body(req);
    const key = req.headers['idempotency-key'];
    if (key && this.idem.has(key)) {
      if (this.hang) return true;
      return this.send(res, 200, this.statuses.get(this.idem.get(key)));
    }
    const text = String(b.status ?? '');
    if (!text.trim()) return this.send(res, 422, { error: "Validation failed: Text can't be blank" });
    const w = this.weight(text);
    if (w > this.maxCharacters) {
      return this.send(res, 422, { error: `Validation failed: Text character limit of ${this.maxCharacters} exceeded` });
    }
    const visibility = b.visibility || 'public';
    if (!['public', 'unlisted', 'private', 'direct'].includes(visibility)) {
      return this.send(res, 422, { error: 'Validation failed: Visibility is not included in the list' });
    }
    if (b.in_reply_to_id && !this.statuses.has(String(b.in_reply_to_id))) {
      return this.send(res, 404, { error: 'Record not found' });
    }
    const s = this.status(this.me, text, { visibility, in_reply_to_id: b.in_reply_to_id ? String(b.in_reply_to_id) : null });
    s.idempotency_key = key ?? null;
    s.weight = w;
    this.posted.push(s);
    if (key) this.idem.set(key, s.id);
    if (this.hang) return true; // taken, never answered (the client dies meanwhile)
    return this.send(res, 200, s);
  }

  stream(req, res) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write(':)\n');
    const s = { res, silent: false };
    s.timer = setInterval(() => { if (!s.silent) res.write(':thump\n'); }, this.heartbeatMs);
    this.streams.add(s);
    this.streamConnects++;
    const end = () => { clearInterval(s.timer); this.streams.delete(s); };
    res.on('close', end);
    return true;
  }

  async control(req, res, u) {
    const p = u.pathname.slice('/_control/'.length);
    const b = req.method === 'POST' ? await this.body(req) : {};
    if (p === 'mention') return this.send(res, 200, this.mention(b));
    if (p === 'drop') {
      const n = this.streams.size;
      for (const s of [...this.streams]) { clearInterval(s.timer); s.res.destroy(); this.streams.delete(s); }
      return this.send(res, 200, { dropped: n });
    }
    if (p === 'silent') {
      for (const s of this.streams) s.silent = true;
      return this.send(res, 200, { silenced: this.streams.size });
    }
    if (p === 'fail') {
      this.fails.push({ count: b.count ?? 1, code: b.code, path: b.path, headers: b.headers, error: b.error });
      return this.send(res, 200, {});
    }
    if (p === 'token') { this.token = b.token; return this.send(res, 200, {}); }
    if (p === 'hang') { this.hang = !!b.on; return this.send(res, 200, {}); }
    if (p === 'slow') { this.slow = b.ms ? { ms: b.ms, path: b.path } : null; return this.send(res, 200, {}); }
    if (p === 'statuses') return this.send(res, 200, this.posted);
    if (p === 'state') {
      return this.send(res, 200, { streams: this.streams.size, stream_connects: this.streamConnects, requests: this.requests });
    }
    return this.send(res, 404, { error: 'no such control' });
  }
}

// Standalone: `node tests/peers/mastodon.mjs [port]` prints its URL and the token.
if (import.meta.url === `file://${process.argv[1]}`) {
  const m = new FakeMastodon();
  await m.start();
  console.log(`fake mastodon at ${m.url} token ${m.token}`);
}
