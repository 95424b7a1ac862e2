/* SPDX-License-Identifier: MIT */
/*
 * Switchboard chat widget. Embed with
 *   <script src="https://HOST/widget.js" data-site="default" async></script>
 * Plain JavaScript, no build step; everything lives in a shadow root so the host page's
 * CSS cannot break it. Protocol: WebSocket /v1/visitor/ws, subprotocol
 * switchboard.visitor.v1 (docs/contract.md §5). Messages typed while offline wait in a local queue
 * and are re-sent with the same client_id after a reconnect (the server acks a repeat
 * with the same id, never stores it twice); a reconnect resumes from the last seq seen.
 *
 * The welcome brings the newest page of the transcript; older pages come with history
 * frames, on scrolling to the top or with the "Load earlier" button, and by themselves
 * after a reconnect, to fill what was missed.
 *
 * Stable hooks: [data-sb=launcher|panel|input|send|message|expected|typing|email|earlier].
 * JS API: Switchboard.open(), .close(), .identify({user_id,name,email,user_hash}),
 * .on("message"|"open"|"close"|"status", fn).
 */
(function () {
  'use strict';
  if (window.Switchboard && window.Switchboard._loaded) return;

  var script = document.currentScript ||
    document.querySelector('script[src*="widget.js"][data-site]');
  var site = (script && script.getAttribute('data-site')) || 'default';
  /* No human reply this long after a message: offer to continue by email. */
  var emailAfterMs = +((script && script.getAttribute('data-email-after')) || 120000);
  var origin = script ? new URL(script.src, location.href).origin : location.origin;
  var wsUrl = origin.replace(/^http/, 'ws') + '/v1/visitor/ws';
  var KEY = 'sb:' + site + ':';
  var store = {
    get: function (k) { try { return localStorage.getItem(KEY + k); } catch (e) { return null; } },
    set: function (k, v) {
      try { if (v == null) localStorage.removeItem(KEY + k); else localStorage.setItem(KEY + k, v); }
      catch (e) { /* private mode: session only */ }
    }
  };

  var state = {
    ws: null, open: false, connected: false, welcomed: false, attempt: 0, timer: null,
    /* lastSeq is per page: a fresh page has nothing rendered and asks for the whole history. */
    token: store.get('token'), lastSeq: null, conv: store.get('conv'),
    identity: {}, pending: JSON.parse(store.get('pending') || '[]'), seen: {},
    wait: {}, handlers: {}, typingTimer: null, lastTypingSent: 0, noReplyTimer: null,
    /* history paging: the cursor of the next older page; gapAfter = fill down to this seq */
    before: null, loading: false, gapAfter: null, helloSeq: null
  };

  function emit(name, arg) {
    (state.handlers[name] || []).forEach(function (fn) {
      try { fn(arg); } catch (e) { setTimeout(function () { throw e; }); }
    });
  }

  /* ---- DOM ---- */
  var host = document.createElement('div');
  host.setAttribute('data-switchboard', '');
  var root = host.attachShadow({ mode: 'open' });
  root.innerHTML =
    '<style>' +
    ':host{all:initial}*{box-sizing:border-box;font:14px/1.4 system-ui,sans-serif}' +
    '.l{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;' +
    'background:#2457d6;color:#fff;font-size:26px;cursor:pointer;box-shadow:0 4px 14px #0004;z-index:2147483646}' +
    '.l:focus-visible,button:focus-visible,textarea:focus-visible,input:focus-visible{outline:3px solid #f5a623;outline-offset:2px}' +
    '.p{position:fixed;right:20px;bottom:88px;width:360px;max-width:calc(100vw - 24px);height:520px;' +
    'max-height:calc(100vh - 110px);background:#fff;color:#111;border-radius:12px;box-shadow:0 8px 30px #0005;' +
    'display:none;flex-direction:column;overflow:hidden;z-index:2147483647}' +
    '.p.o{display:flex}@media (max-width:480px){.p{right:0;bottom:0;width:100vw;max-width:100vw;height:100vh;max-height:100vh;border-radius:0}}' +
    '.h{background:#2457d6;color:#fff;padding:12px 14px;display:flex;align-items:center;gap:8px}' +
    '.h b{flex:1;font-weight:600}.h button{background:none;border:0;color:#fff;font-size:20px;cursor:pointer}' +
    '.e{font-size:12px;opacity:.9;display:block}.s{font-size:12px;padding:4px 14px;background:#fff4d6;display:none}' +
    '.m{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:6px}' +
    '.b{max-width:80%;padding:8px 11px;border-radius:14px;white-space:pre-wrap;word-wrap:break-word}' +
    '.b[data-dir=in]{align-self:flex-end;background:#2457d6;color:#fff}' +
    '.b[data-dir=out]{align-self:flex-start;background:#eef1f6}' +
    '.b.q{opacity:.6}.w{font-size:12px;color:#666;padding:0 14px;min-height:18px}' +
    '.f{display:flex;gap:6px;padding:10px;border-top:1px solid #e3e6ec}' +
    'textarea{flex:1;resize:none;height:40px;padding:9px;border:1px solid #c9ced8;border-radius:8px}' +
    '.f button,.k button{background:#2457d6;color:#fff;border:0;border-radius:8px;padding:0 14px;cursor:pointer}' +
    '.k{display:none;gap:6px;padding:8px 10px;background:#f6f8fb;border-top:1px solid #e3e6ec}' +
    '.k.o{display:flex}.k input{flex:1;padding:7px;border:1px solid #c9ced8;border-radius:8px}' +
    '.r{align-self:center;background:none;border:0;color:#2457d6;font-size:12px;cursor:pointer;padding:4px}' +
    '.b.x{opacity:.6;text-decoration:line-through}' +
    '</style>' +
    '<button class="l" data-sb="launcher" aria-label="Chat with us" aria-expanded="false">\u{1F4AC}</button>' +
    '<div class="p" data-sb="panel" role="dialog" aria-label="Chat">' +
    '<div class="h"><div style="flex:1"><b>Chat with us</b>' +
    '<span class="e" data-sb="expected" aria-live="polite"></span></div>' +
    '<button data-sb="close" aria-label="Close chat">\u00D7</button></div>' +
    '<div class="s" data-sb="status" role="status"></div>' +
    '<div class="m" data-sb="messages" aria-live="polite" aria-relevant="additions" tabindex="0">' +
    '<button class="r" data-sb="earlier" type="button" hidden>Load earlier messages</button></div>' +
    '<div class="w" data-sb="typing" aria-live="polite"></div>' +
    '<form class="k" data-sb="email-form"><input type="email" data-sb="email" ' +
    'placeholder="Your email, to continue there" aria-label="Your email address" required>' +
    '<button type="submit">Save</button></form>' +
    '<form class="f" data-sb="form"><textarea data-sb="input" aria-label="Your message" ' +
    'placeholder="Write a message\u2026" maxlength="8000"></textarea>' +
    '<button type="submit" data-sb="send">Send</button></form></div>';

  function $(sel) { return root.querySelector('[data-sb="' + sel + '"]'); }
  var launcher = $('launcher'), panel = $('panel'), list = $('messages'), input = $('input');
  var expectedEl = $('expected'), statusEl = $('status'), typingEl = $('typing');
  var emailForm = $('email-form'), emailInput = $('email'), earlier = $('earlier');

  /* The honest wait (docs/sla.md): when the team is back, that nobody is online, or the
   * usual reply time; the first two offer the email field. */
  function fmtWait(w) {
    var ms = w.expected_reply_ms;
    if (w.open === false) {
      if (w.back_at == null) return 'We are away right now \u2014 leave your email and we\'ll answer there';
      var at = new Date(w.back_at), now = new Date(), day = new Date(now);
      var hm = at.getHours() + ':' + ('0' + at.getMinutes()).slice(-2);
      var same = function (d) { return d.toDateString() === at.toDateString(); };
      day.setDate(day.getDate() + 1);
      if (same(now)) return 'We\'re back today at ' + hm;
      if (same(day)) return 'We\'re back tomorrow at ' + hm;
      return 'We\'re back ' + at.toLocaleDateString('en', at - now < 6 * 864e5 ? { weekday: 'long' } :
        { weekday: 'long', day: 'numeric', month: 'long' }) + ' at ' + hm;
    }
    if (w.online === 0) return 'Nobody is online right now \u2014 leave your email and we\'ll answer there';
    if (ms == null) return 'A teammate will reply here as soon as possible';
    if (ms < 90 * 1000) return 'We usually reply in about a minute';
    if (ms < 60 * 60 * 1000) return 'We usually reply in about ' + Math.round(ms / 60000) + ' minutes';
    if (ms < 24 * 3600 * 1000) return 'We usually reply in about ' + Math.round(ms / 3600000) + ' hours';
    return 'We will reply by email if you leave your address';
  }
  function setExpected(w) {
    state.wait = w;
    expectedEl.textContent = fmtWait(w);
    var ms = w.expected_reply_ms, away = w.open === false || w.online === 0;
    if ((away || (ms != null && ms >= 60 * 60 * 1000)) && !state.identity.email && !store.get('email')) {
      emailForm.classList.add('o');
    }
  }
  function offerEmail() {
    state.noReplyTimer = null;
    if (state.identity.email || store.get('email')) return;
    emailForm.classList.add('o');
    setStatus('Nobody has answered yet. Leave your email and we will continue there.');
  }
  function setStatus(text) {
    statusEl.textContent = text || '';
    statusEl.style.display = text ? 'block' : 'none';
  }

  /* The first bubble with a seq after this one: bubbles stay in transcript order. */
  function after(seq) {
    var els = list.querySelectorAll('[data-seq]');
    for (var i = 0; i < els.length; i++) if (cmpSeq(els[i].getAttribute('data-seq'), seq) > 0) return els[i];
    return null;
  }

  function render(m, queued, older) {
    if (m.kind && m.kind !== 'message') return;
    var key = m.id || ('q:' + m.client_id);
    var el = list.querySelector('[data-key="' + CSS.escape(key) + '"]');
    if (!el && m.client_id) el = list.querySelector('[data-key="' + CSS.escape('q:' + m.client_id) + '"]');
    if (!el) {
      el = document.createElement('div');
      el.className = 'b';
      el.setAttribute('data-sb', 'message');
      list.insertBefore(el, m.seq ? after(m.seq) : null);
    }
    if (m.seq) el.setAttribute('data-seq', m.seq);
    el.setAttribute('data-key', key);
    el.setAttribute('data-dir', m.dir || 'in');
    el.classList.toggle('q', !!queued);
    el.textContent = m.text;
    if (m.author && m.author.name && m.dir === 'out') el.title = m.author.name;
    if (!older) list.scrollTop = list.scrollHeight;
  }

  function savePending() { store.set('pending', JSON.stringify(state.pending)); }

  /* ---- connection ---- */
  function send(obj) {
    if (state.ws && state.ws.readyState === 1) { state.ws.send(JSON.stringify(obj)); return true; }
    return false;
  }

  function connect() {
    clearTimeout(state.timer);
    var ws;
    try { ws = new WebSocket(wsUrl, 'switchboard.visitor.v1'); } catch (e) { return retry(); }
    state.ws = ws;
    ws.onopen = function () {
      state.connected = true;
      /* Keepalive: proxies drop silent sockets; the server closes peers idle for 5 min. */
      clearInterval(state.pinger);
      state.pinger = setInterval(function () { send({ type: 'ping' }); }, 25000);
      sendHello();
    };
    ws.onmessage = function (e) {
      var f;
      try { f = JSON.parse(e.data); } catch (err) { return; }
      onFrame(f);
    };
    ws.onclose = function () {
      clearInterval(state.pinger);
      var was = state.welcomed;
      state.connected = state.welcomed = false;
      if (state.ws === ws) state.ws = null;
      if (was) setStatus('Reconnecting\u2026');
      retry();
    };
    ws.onerror = function () { /* onclose follows */ };
  }

  function sendHello() {
    var hello = { type: 'hello', site: site, token: state.token, last_seq: state.lastSeq };
    for (var k in state.identity) hello[k] = state.identity[k];
    state.helloSeq = state.lastSeq;
    send(hello);
  }

  /* Asks for the next older page (none while one is on its way). */
  function loadEarlier() {
    if (!state.before || state.loading || !state.welcomed) return;
    state.loading = true;
    send({ type: 'history', before: state.before, after: state.gapAfter, limit: 50 });
  }

  function paged(f) {
    state.before = f.more ? f.before : null;
    if (!state.before) state.gapAfter = null;
    earlier.hidden = !state.before || !!state.gapAfter;
    if (state.gapAfter) loadEarlier();
  }

  function retry() {
    state.attempt++;
    var delay = Math.min(30000, 500 * Math.pow(2, Math.min(state.attempt, 6))) * (0.5 + Math.random() / 2);
    state.timer = setTimeout(connect, delay);
  }

  function flushPending() {
    state.pending.forEach(function (p) { send({ type: 'message', client_id: p.client_id, text: p.text }); });
  }

  function onFrame(f) {
    switch (f.type) {
      case 'welcome':
        state.welcomed = true;
        state.attempt = 0;
        setStatus('');
        if (f.token) { state.token = f.token; store.set('token', f.token); }
        if (f.conv) { state.conv = f.conv; store.set('conv', f.conv); }
        state.loading = false;
        state.gapAfter = state.helloSeq; /* a reconnect: fetch all that was missed */
        paged(f); /* first: the button above the bubbles must not push the newest down */
        (f.history || []).forEach(function (m) { onMessage(m); });
        requestAnimationFrame(function () { list.scrollTop = list.scrollHeight; }); /* after layout */
        setExpected(f);
        flushPending();
        emit('status', { connected: true, conv: state.conv });
        break;
      case 'ack':
        state.pending = state.pending.filter(function (p) {
          if (p.client_id !== f.client_id) return true;
          render({ id: f.id, seq: f.seq, client_id: p.client_id, text: p.text, dir: 'in', kind: 'message' }, false);
          return false;
        });
        savePending();
        state.seen[f.id] = true;
        if (!state.noReplyTimer) state.noReplyTimer = setTimeout(offerEmail, emailAfterMs);
        advance(f.seq);
        if (f.conv) { state.conv = f.conv; store.set('conv', f.conv); }
        break;
      case 'message':
        onMessage(f);
        break;
      case 'history':
        state.loading = false;
        var top = list.scrollHeight - list.scrollTop;
        (f.messages || []).forEach(function (m) { onMessage(m, true); });
        paged(f);
        list.scrollTop = list.scrollHeight - top; /* the same bubbles stay in view */
        break;
      case 'typing':
        typingEl.textContent = f.on === false ? '' : (f.name || 'Someone') + ' is typing\u2026';
        clearTimeout(state.typingTimer);
        state.typingTimer = setTimeout(function () { typingEl.textContent = ''; }, 6000);
        break;
      case 'status':
        if ('expected_reply_ms' in f) setExpected(f);
        emit('status', f);
        break;
      case 'error':
        onError(f);
        break;
    }
  }

  function onError(f) {
    var wait = f.retry_after_ms || 1000;
    var p = f.client_id && state.pending.filter(function (x) { return x.client_id === f.client_id; })[0];
    if (f.code === 'rate_limited' || f.code === 'unavailable') {
      if (!state.welcomed) setTimeout(sendHello, wait);
      else if (p) setTimeout(function () { send({ type: 'message', client_id: p.client_id, text: p.text }); }, wait);
      else if (state.loading) setTimeout(function () { state.loading = false; loadEarlier(); }, wait);
      if (f.code === 'rate_limited') setStatus('Slow down a little \u2014 retrying shortly.');
    } else if (f.code === 'unauthorized') { state.token = null; store.set('token', null); }
    else {
      if (p) { /* refused for good: stop resending it, show it as not sent */
        state.pending = state.pending.filter(function (x) { return x !== p; });
        savePending();
        var el = list.querySelector('[data-key="' + CSS.escape('q:' + p.client_id) + '"]');
        if (el) { el.classList.add('x'); el.title = f.message || ''; }
      }
      setStatus(f.message || 'Something went wrong.');
    }
  }

  function advance(seq) {
    if (!seq) return;
    if (!state.lastSeq || cmpSeq(seq, state.lastSeq) > 0) state.lastSeq = seq;
  }
  function cmpSeq(a, b) {
    var x = a.split('-'), y = b.split('-');
    return (+x[0] - +y[0]) || (+x[1] - +y[1]);
  }

  function onMessage(m, older) {
    advance(m.seq);
    if (m.kind && m.kind !== 'message') return;
    if (m.client_id && state.pending.some(function (p) { return p.client_id === m.client_id; })) {
      state.pending = state.pending.filter(function (p) { return p.client_id !== m.client_id; });
      savePending();
    }
    if (state.seen[m.id]) return;
    state.seen[m.id] = true;
    if (m.dir === 'out') {
      typingEl.textContent = '';
      clearTimeout(state.noReplyTimer);
      state.noReplyTimer = null;
    }
    render(m, false, older);
    if (!older) emit('message', m); /* older pages are history, not news */
  }

  /* ---- user actions ---- */
  function submit(text) {
    text = text.trim();
    if (!text) return;
    var id = 'w' + Date.now().toString(36) + Math.random().toString(36).slice(2, 10);
    var p = { client_id: id, text: text };
    state.pending.push(p);
    savePending();
    render({ client_id: id, text: text, dir: 'in', kind: 'message' }, true);
    send({ type: 'message', client_id: id, text: text });
  }

  $('form').addEventListener('submit', function (e) {
    e.preventDefault();
    submit(input.value);
    input.value = '';
    input.focus();
  });
  input.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('form').requestSubmit(); }
    else if (e.key === 'Escape') api.close();
  });
  input.addEventListener('input', function () {
    var now = Date.now();
    if (now - state.lastTypingSent > 2000) { state.lastTypingSent = now; send({ type: 'typing', on: true }); }
  });
  emailForm.addEventListener('submit', function (e) {
    e.preventDefault();
    var email = emailInput.value.trim();
    if (!email) return;
    store.set('email', email);
    state.identity.email = email;
    send({ type: 'email', email: email });
    emailForm.classList.remove('o');
    setStatus('Thanks! We will answer at ' + email + ' if you are gone.');
    setExpected(state.wait);
  });
  earlier.addEventListener('click', loadEarlier);
  list.addEventListener('scroll', function () { if (list.scrollTop < 30) loadEarlier(); });
  launcher.addEventListener('click', function () { state.open ? api.close() : api.open(); });
  $('close').addEventListener('click', function () { api.close(); launcher.focus(); });

  var api = {
    _loaded: true,
    open: function () {
      state.open = true;
      panel.classList.add('o');
      list.scrollTop = list.scrollHeight; /* rendered while hidden: show the newest */
      launcher.setAttribute('aria-expanded', 'true');
      input.focus();
      emit('open');
    },
    close: function () {
      state.open = false;
      panel.classList.remove('o');
      launcher.setAttribute('aria-expanded', 'false');
      emit('close');
    },
    identify: function (who) {
      state.identity = {};
      ['user_id', 'name', 'email', 'user_hash'].forEach(function (k) { if (who && who[k] != null) state.identity[k] = String(who[k]); });
      if (state.ws) state.ws.close(); /* reconnect with the new identity */
    },
    on: function (name, fn) { (state.handlers[name] = state.handlers[name] || []).push(fn); return api; },
    _state: state
  };
  var queued = (window.Switchboard && window.Switchboard.q) || [];
  window.Switchboard = api;
  queued.forEach(function (c) { try { api[c[0]].apply(api, c.slice(1)); } catch (e) { /* ignore */ } });

  state.pending.forEach(function (p) { render({ client_id: p.client_id, text: p.text, dir: 'in', kind: 'message' }, true); });
  function mount() { document.body.appendChild(host); connect(); }
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);
})();
