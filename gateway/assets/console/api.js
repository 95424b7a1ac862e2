// SPDX-License-Identifier: MIT
// The console's client of the Switchboard REST API (/v1, same origin) and of the live
// feed (Server-Sent Events). Every call sends the staff token as a Bearer header;
// errors come back as ApiError with the API's {"error":{code,message}} fields.

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

export class Api {
  constructor(token, { onUnauthorized } = {}) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
  }

  async request(method, path, body) {
    const headers = { authorization: `Bearer ${this.token}`, accept: 'application/json' };
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let r;
    try {
      r = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'network', 'Cannot reach Switchboard; check your connection.');
    }
    const text = await r.text();
    let json;
    try { json = text ? JSON.parse(text) : null; } catch { json = null; }
    if (!r.ok) {
      const err = (json && json.error) || {};
      const e = new ApiError(r.status, err.code || `http_${r.status}`,
        err.message || `HTTP ${r.status}`, json);
      if (r.status === 401 && this.onUnauthorized) this.onUnauthorized(e);
      throw e;
    }
    return json;
  }

  get(path) { return this.request('GET', path); }
  post(path, body = {}) { return this.request('POST', path, body); }

  me() { return this.get('/v1/me'); }
  list(filters, cursor, limit = 100) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (filters.status) q.set('status', filters.status);
    if (filters.assignee && filters.assignee !== 'any') q.set('assignee', filters.assignee);
    if (filters.channel) q.set('channel', filters.channel);
    if (cursor) q.set('cursor', cursor);
    return this.get(`/v1/conversations?${q}`);
  }
  conversation(id) { return this.get(`/v1/conversations/${encodeURIComponent(id)}`); }
  messages(id, after, limit = 500) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (after) q.set('after', after);
    return this.get(`/v1/conversations/${encodeURIComponent(id)}/messages?${q}`);
  }
  contact(id) { return this.get(`/v1/contacts/${encodeURIComponent(id)}`); }
  act(id, action, body = {}) {
    return this.post(`/v1/conversations/${encodeURIComponent(id)}/${action}`, body);
  }
  reply(id, body) { return this.act(id, 'messages', body); }
  note(id, body) { return this.act(id, 'notes', body); }
  typing(id, on) { return this.act(id, 'typing', { on }); }
  retry(id, mid) {
    return this.post(`/v1/conversations/${encodeURIComponent(id)}/messages/${encodeURIComponent(mid)}/retry`);
  }

  // GET /v1/staff: every staff member {id, name, role, channels, online}, online first.
  async staff() { return (await this.get('/v1/staff')).items || []; }

  // GET /v1/presence: staff online, or null when this server has no such endpoint.
  async presence() {
    try {
      const r = await this.get('/v1/presence');
      return r && Array.isArray(r.items) ? r.items : null;
    } catch (e) {
      if (e.status === 401) throw e;
      return null;
    }
  }

  // The live feed. handlers: {onEvent(ev), onState('live'|'reconnecting'|'down'),
  // onRevoked()}. EventSource resumes with Last-Event-ID by itself; when it gives up
  // (e.g. an HTTP error), we open a new one from the last cursor seen.
  events(handlers) {
    let es = null;
    let cursor = '';
    let closed = false;
    let retryMs = 1000;
    let retryTimer = null;
    let everOpen = false;
    const open = () => {
      const q = new URLSearchParams({ access_token: this.token });
      if (cursor) q.set('after', cursor);
      es = new EventSource(`/v1/events?${q}`);
      es.onopen = () => {
        retryMs = 1000;
        handlers.onState('live', everOpen);
        everOpen = true;
      };
      es.onmessage = (m) => {
        if (m.lastEventId) cursor = m.lastEventId;
        let ev;
        try { ev = JSON.parse(m.data); } catch { return; }
        handlers.onEvent(ev);
      };
      es.addEventListener('error', (m) => {
        if (closed) return;
        if (m.data) { // the server's own `event: error` before it ends the stream
          let err = {};
          try { err = JSON.parse(m.data).error || {}; } catch { /* keep {} */ }
          if (err.code === 'unauthorized') {
            shut();
            handlers.onRevoked();
            return;
          }
        }
        if (es.readyState === EventSource.CLOSED) {
          handlers.onState('down');
          clearTimeout(retryTimer);
          retryTimer = setTimeout(async () => {
            if (closed) return;
            try { await this.me(); } catch (e) { if (e.status === 401) return; }
            if (!closed) open();
          }, retryMs);
          retryMs = Math.min(retryMs * 2, 30000);
        } else {
          handlers.onState('reconnecting');
        }
      });
    };
    const shut = () => {
      closed = true;
      clearTimeout(retryTimer);
      if (es) es.close();
    };
    open();
    return { close: shut };
  }
}
