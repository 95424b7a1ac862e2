// SPDX-License-Identifier: MIT
// A fake Bluesky PDS for the tests of connectors/bluesky (docs/bluesky.md), written from
// the public XRPC documentation: the parts of atproto the connector uses, over plain
// node:http, with JSON errors {"error","message"} as a PDS gives them.
//
//   POST com.atproto.server.createSession {identifier,password} → {accessJwt,refreshJwt,did,handle}
//        (401 AuthenticationRequired for a wrong password)
//   POST com.atproto.server.refreshSession  Bearer refreshJwt → a new pair (the old refresh
//        token is spent); an expired one → 400 ExpiredToken
//   GET  app.bsky.notification.listNotifications?limit&cursor  newest first, `cursor` pages
//   GET  app.bsky.feed.getPostThread?uri&depth&parentHeight     threadViewPost with parents
//   POST com.atproto.repo.createRecord {repo,collection,rkey,record}  validates a post
//        (text ≤ 300 graphemes, reply refs naming existing posts with their cids, mention
//        facets' UTF-8 byte ranges, a TID rkey), refuses a key that exists
//   GET  com.atproto.repo.getRecord?repo&collection&rkey  → {uri,cid,value} | 400 RecordNotFound
//   An expired access token → 400 ExpiredToken on any authenticated call.
//
// Tests drive it with methods (or POST /_control/<method> with a JSON array of arguments):
// user(), mention(), reply(), like(), expireAccess(), expireRefresh(), setPassword(),
// failNext(), rateLimit(), hold(), records() (the records made, also the `created` array), and
// onCreate (a hook run after a record is stored, before the answer leaves).
import http from 'node:http';
import crypto from 'node:crypto';

const seg = new Intl.Segmenter('en', { granularity: 'grapheme' });
const graphemes = (s) => [...seg.segment(s)].length;
const b64u = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const TID = /^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$/;

export class FakePds {
  constructor({ handle = 'support.example.com', password = 'app-pass-1' } = {}) {
    this.handle = handle;
    this.did = `did:plc:${crypto.createHash('sha256').update(handle).digest('hex').slice(0, 24)}`;
    this.password = password;
    this.tokens = new Map(); // token → {kind:"access"|"refresh", exp:bool, spent:bool}
    this.posts = new Map(); // uri → {uri, cid, author, record, indexedAt}
    this.notifs = []; // newest first
    this.users = new Map(); // handle → {did, handle, displayName}
    this.created = []; // records created through createRecord: {uri, cid, rkey, record}
    this.fails = []; // {nsid|null, status, body, headers} answered to the next calls
    this.calls = []; // {nsid, status}
    this.counts = { createSession: 0, refreshSession: 0 };
    this.onCreate = null;
    this.holding = new Set(); // nsids whose calls get no answer (hold())
    this.held = []; // {nsid} of the calls held
    this.lastTs = 0;
    this.server = http.createServer((req, res) => this.handle_(req, res));
  }

  async start() {
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  close() {
    this.server.closeAllConnections?.();
    return new Promise((r) => this.server.close(r));
  }

  // ---- control ----

  user(handle, displayName = '') {
    if (!this.users.has(handle)) {
      const did = `did:plc:${crypto.createHash('sha256').update(handle).digest('hex').slice(0, 24)}`;
      this.users.set(handle, { did, handle, displayName });
    }
    return this.users.get(handle);
  }

  now() {
    // unique, increasing indexedAt values
    const t = Math.max(Date.now(), this.lastTs + 1);
    this.lastTs = t;
    return new Date(t).toISOString();
  }

  // A post by `handle` (reply: the uri of the post it answers); notifies us as `reason`.
  post(handle, text, { replyTo, reason, facets } = {}) {
    const author = this.user(handle);
    const rkey = this.tidNow();
    const uri = `at://${author.did}/app.bsky.feed.post/${rkey}`;
    const cid = `bafy${crypto.randomBytes(16).toString('hex')}`;
    const record = { $type: 'app.bsky.feed.post', text, createdAt: new Date().toISOString(), langs: ['en'] };
    if (facets) record.facets = facets;
    if (replyTo) {
      const parent = this.posts.get(replyTo);
      if (!parent) throw new Error(`no post ${replyTo}`);
      const root = parent.record.reply?.root ?? { uri: parent.uri, cid: parent.cid };
      record.reply = { root, parent: { uri: parent.uri, cid: parent.cid } };
    }
    const indexedAt = this.now();
    const p = { uri, cid, author, record, indexedAt };
    this.posts.set(uri, p);
    if (reason) {
      this.notifs.unshift({
        uri, cid, author: { ...author }, reason,
        reasonSubject: reason === 'reply' ? record.reply.parent.uri : undefined,
        record, isRead: false, indexedAt, labels: [],
      });
    }
    return p;
  }

  // "@<our handle> text" with its mention facet.
  mention(handle, text) {
    const full = `@${this.handle} ${text}`;
    const end = Buffer.byteLength(`@${this.handle}`);
    return this.post(handle, full, {
      reason: 'mention',
      facets: [{ index: { byteStart: 0, byteEnd: end },
        features: [{ $type: 'app.bsky.richtext.facet#mention', did: this.did }] }],
    });
  }

  reply(handle, parentUri, text) {
    return this.post(handle, text, { replyTo: parentUri, reason: 'reply' });
  }

  like(handle, subjectUri) {
    const author = this.user(handle);
    this.notifs.unshift({
      uri: `at://${author.did}/app.bsky.feed.like/${this.tidNow()}`,
      cid: `bafy${crypto.randomBytes(16).toString('hex')}`, author: { ...author }, reason: 'like',
      reasonSubject: subjectUri, record: { $type: 'app.bsky.feed.like' }, isRead: false,
      indexedAt: this.now(), labels: [],
    });
  }

  // Calls of nsid get no answer from now on (a PDS that hangs).
  hold(nsid) { this.holding.add(nsid); }

  // The records made through createRecord (for the control API).
  records() { return this.created; }

  expireAccess() { for (const t of this.tokens.values()) if (t.kind === 'access') t.exp = true; }
  expireRefresh() { for (const t of this.tokens.values()) t.exp = true; }
  setPassword(p) { this.password = p; for (const t of this.tokens.values()) t.exp = true; }
  // The next n calls (of nsid, or any when null) answer status with body and headers.
  failNext(n, status, { nsid = null, body, headers = {} } = {}) {
    for (let i = 0; i < n; i++) {
      this.fails.push({ nsid, status, body: body ?? { error: 'InternalServerError', message: 'failed on purpose' }, headers });
    }
  }
  // The next createRecord answers 429 with ratelimit-reset = resetUnix (seconds).
  rateLimit(resetUnix, nsid = 'com.atproto.repo.createRecord') {
    this.failNext(1, 429, { nsid, body: { error: 'RateLimitExceeded', message: 'Rate Limit Exceeded' },
      headers: { 'ratelimit-limit': '5000', 'ratelimit-remaining': '0',
        'ratelimit-reset': String(resetUnix), 'ratelimit-policy': '5000;w=3600' } });
  }

  tidNow() {
    const us = BigInt(Date.now()) * 1000n + BigInt(Math.floor(Math.random() * 1000));
    let v = (us << 10n) | BigInt(Math.floor(Math.random() * 1024));
    const abc = '234567abcdefghijklmnopqrstuvwxyz';
    let s = '';
    for (let i = 0; i < 13; i++) { s = abc[Number(v & 31n)] + s; v >>= 5n; }
    return s;
  }

  // ---- XRPC ----

  token(kind) {
    const t = `${b64u({ typ: kind === 'access' ? 'at+jwt' : 'refresh+jwt', alg: 'HS256' })}.${
      b64u({ sub: this.did, scope: kind === 'access' ? 'com.atproto.appPass' : 'com.atproto.refresh', jti: crypto.randomUUID() })}.${
      crypto.randomBytes(16).toString('base64url')}`;
    this.tokens.set(t, { kind, exp: false, spent: false });
    return t;
  }

  session() {
    return { accessJwt: this.token('access'), refreshJwt: this.token('refresh'), handle: this.handle,
      did: this.did, active: true };
  }

  auth(req, kind) {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization || '');
    const t = m && this.tokens.get(m[1]);
    if (!t || t.kind !== kind || t.spent) return [401, { error: 'InvalidToken', message: 'Token could not be verified' }];
    if (t.exp) return [400, { error: 'ExpiredToken', message: 'Token has expired' }];
    return null;
  }

  handle_(req, res) {
    let raw = '';
    req.on('data', (c) => { raw += c; });
    req.on('end', async () => {
      const u = new URL(req.url, 'http://x');
      const send = (status, body, headers = {}) => {
        this.calls.push({ nsid: u.pathname.slice(6), status });
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(body));
      };
      try {
        if (u.pathname.startsWith('/_control/')) {
          const fn = u.pathname.slice(10);
          if (typeof this[fn] !== 'function') return send(404, { error: 'NotFound' });
          return send(200, { result: this[fn](...(raw ? JSON.parse(raw) : [])) ?? null });
        }
        if (!u.pathname.startsWith('/xrpc/')) return send(404, { error: 'NotFound', message: 'no such route' });
        const nsid = u.pathname.slice(6);
        if (this.holding.has(nsid)) {
          this.held.push({ nsid });
          return; // never answered (the connection is closed by close())
        }
        const i = this.fails.findIndex((f) => !f.nsid || f.nsid === nsid);
        if (i >= 0) {
          const f = this.fails.splice(i, 1)[0];
          return send(f.status, f.body, f.headers);
        }
        let body = {};
        if (req.method === 'POST' && raw) {
          try { body = JSON.parse(raw); } catch { return send(400, { error: 'InvalidRequest', message: 'bad JSON' }); }
        }
        const [status, out, headers] = await this.route(nsid, req, u.searchParams, body);
        send(status, out, headers);
      } catch (e) {
        send(500, { error: 'InternalServerError', message: String(e) });
      }
    });
  }

  async route(nsid, req, q, body) {
    const need = (kind = 'access') => this.auth(req, kind);
    switch (nsid) {
      case 'com.atproto.server.createSession':
        this.counts.createSession++;
        if ((body.identifier !== this.handle && body.identifier !== this.did) || body.password !== this.password) {
          return [401, { error: 'AuthenticationRequired', message: 'Invalid identifier or password' }];
        }
        return [200, this.session()];
      case 'com.atproto.server.refreshSession': {
        this.counts.refreshSession++;
        const e = need('refresh');
        if (e) return e;
        const m = /^Bearer (.+)$/.exec(req.headers.authorization);
        this.tokens.get(m[1]).spent = true;
        return [200, this.session()];
      }
      case 'app.bsky.notification.listNotifications': return need() || this.list(q);
      case 'app.bsky.feed.getPostThread': return need() || this.thread(q);
      case 'com.atproto.repo.createRecord': return need() || this.create(body);
      case 'com.atproto.repo.getRecord': return this.getRecord(q);
      default: return [501, { error: 'MethodNotImplemented', message: `${nsid} is not implemented` }];
    }
  }

  list(q) {
    const limit = Math.min(Math.max(Number(q.get('limit') || 50), 1), 100);
    const cursor = q.get('cursor');
    const from = cursor ? this.notifs.filter((n) => n.indexedAt < cursor) : this.notifs;
    const page = from.slice(0, limit);
    const out = { notifications: page, seenAt: new Date().toISOString() };
    if (page.length === limit && from.length > limit) out.cursor = page[page.length - 1].indexedAt;
    return [200, out];
  }

  view(p) {
    return { $type: 'app.bsky.feed.defs#postView', uri: p.uri, cid: p.cid, author: p.author,
      record: p.record, indexedAt: p.indexedAt, replyCount: 0, likeCount: 0 };
  }

  thread(q) {
    const p = this.posts.get(q.get('uri'));
    if (!p) return [400, { error: 'NotFound', message: `Post not found: ${q.get('uri')}` }];
    let height = Number(q.get('parentHeight') ?? 80);
    const top = { $type: 'app.bsky.feed.defs#threadViewPost', post: this.view(p), replies: [] };
    let cur = top;
    let rec = p.record;
    while (rec.reply && height-- > 0) {
      const parent = this.posts.get(rec.reply.parent.uri);
      if (!parent) { cur.parent = { $type: 'app.bsky.feed.defs#notFoundPost', uri: rec.reply.parent.uri, notFound: true }; break; }
      cur.parent = { $type: 'app.bsky.feed.defs#threadViewPost', post: this.view(parent) };
      cur = cur.parent;
      rec = parent.record;
    }
    return [200, { thread: top }];
  }

  bad(message) { return [400, { error: 'InvalidRequest', message }]; }

  async create(body) {
    const { repo, collection, rkey, record } = body;
    if (repo !== this.did && repo !== this.handle) return this.bad('Input/repo must be the session\'s');
    if (collection !== 'app.bsky.feed.post') return this.bad(`unexpected collection ${collection}`);
    if (!record || record.$type !== 'app.bsky.feed.post') return this.bad('Record/$type must be app.bsky.feed.post');
    if (typeof record.text !== 'string') return this.bad('Record/text must be a string');
    if (graphemes(record.text) > 300) return this.bad('Record/text must not be longer than 300 graphemes');
    if (Buffer.byteLength(record.text) > 3000) return this.bad('Record/text must not be longer than 3000 characters');
    if (typeof record.createdAt !== 'string' || Number.isNaN(Date.parse(record.createdAt))) {
      return this.bad('Record/createdAt must be a valid datetime');
    }
    if (rkey !== undefined && !TID.test(rkey)) return this.bad('Invalid record key: not a TID');
    if (record.reply) {
      for (const k of ['root', 'parent']) {
        const ref = record.reply[k];
        if (!ref || typeof ref.uri !== 'string' || typeof ref.cid !== 'string') return this.bad(`Record/reply/${k} must be a strongRef`);
        const p = this.posts.get(ref.uri);
        if (!p || p.cid !== ref.cid) return this.bad(`Record/reply/${k} names no such post (uri and cid)`);
      }
    }
    const bytes = Buffer.from(record.text);
    for (const f of record.facets || []) {
      const { byteStart, byteEnd } = f.index || {};
      if (!Number.isInteger(byteStart) || !Number.isInteger(byteEnd) || byteStart < 0 || byteEnd > bytes.length || byteStart >= byteEnd) {
        return this.bad('Record/facets/index: byte range out of the text');
      }
      for (const feat of f.features || []) {
        if (feat.$type === 'app.bsky.richtext.facet#mention' && !/^did:[a-z]+:/.test(feat.did || '')) {
          return this.bad('Record/facets/features/did must be a DID');
        }
      }
    }
    const key = rkey || this.tidNow();
    const uri = `at://${this.did}/app.bsky.feed.post/${key}`;
    if (this.posts.has(uri)) return this.bad(`Record already exists: ${uri}`);
    const cid = `bafy${crypto.createHash('sha256').update(JSON.stringify(record)).digest('hex').slice(0, 40)}`;
    const me = { did: this.did, handle: this.handle, displayName: 'Support' };
    this.posts.set(uri, { uri, cid, author: me, record, indexedAt: this.now() });
    this.created.push({ uri, cid, rkey: key, record });
    if (this.onCreate) await this.onCreate({ uri, cid, rkey: key, record });
    return [200, { uri, cid, validationStatus: 'valid' }];
  }

  getRecord(q) {
    const repo = q.get('repo');
    const did = repo === this.handle ? this.did : repo;
    const uri = `at://${did}/${q.get('collection')}/${q.get('rkey')}`;
    const p = this.posts.get(uri);
    if (!p) return [400, { error: 'RecordNotFound', message: `Could not locate record: ${uri}` }];
    return [200, { uri: p.uri, cid: p.cid, value: p.record }];
  }

  // the UTF-8 text a facet covers
  static facetText(record, facet) {
    return Buffer.from(record.text).subarray(facet.index.byteStart, facet.index.byteEnd).toString();
  }
}
