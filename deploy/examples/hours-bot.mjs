#!/usr/bin/env node
// SPDX-License-Identifier: MIT
//
// hours-bot: an example Switchboard bot (Node 20, no dependencies). It receives
// Switchboard's outbound webhooks, verifies their Standard Webhooks signature, and for
// every customer message (dir "in") either answers a question about opening hours
// itself or hands the conversation to humans.
//
//   SWITCHBOARD_URL=http://127.0.0.1:8080 SWITCHBOARD_TOKEN=sbt_… WEBHOOK_SECRET=s3cret \
//   PORT=3001 node deploy/examples/hours-bot.mjs
//   sbctl bot add --name hours --webhook http://127.0.0.1:3001/ --secret s3cret
//   (use the token sbctl prints as SWITCHBOARD_TOKEN; see deploy/examples/README.md)
//
// Environment: SWITCHBOARD_URL (default http://127.0.0.1:8080), SWITCHBOARD_TOKEN (the
// bot's token, required), WEBHOOK_SECRET (the --secret given to sbctl, required), PORT
// (default 3001), HOST (default 127.0.0.1), HOURS (the answer text).
//
// Webhook contract (https://www.standardwebhooks.com/): the body is the event JSON of
// GET /v1/events; headers webhook-id (stable per event: use it to drop duplicates),
// webhook-timestamp (unix seconds) and webhook-signature ("v1,<base64>", space-separated
// if several) where <base64> = HMAC-SHA256(key, `${id}.${timestamp}.${body}`) and key is
// the base64-decoded part after `whsec_` for secrets that start with it, else the
// secret's UTF-8 bytes. Delivery is at least once and retried on any non-2xx answer, so
// this bot answers 2xx only once it has acted, and makes its own reply idempotent with
// a client_id derived from webhook-id.
import http from 'node:http';
import crypto from 'node:crypto';

const BASE = (process.env.SWITCHBOARD_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const TOKEN = process.env.SWITCHBOARD_TOKEN;
const SECRET = process.env.WEBHOOK_SECRET;
const PORT = Number(process.env.PORT || 3001);
const HOST = process.env.HOST || '127.0.0.1';
const HOURS = process.env.HOURS ||
  'We are open Monday to Friday, 9:00 to 17:00, and Saturday 10:00 to 14:00.';
const TOLERANCE_S = 5 * 60;  // reject signatures older (or newer) than 5 minutes
const MAX_BODY = 1 << 20;
const ASKS_HOURS = /\b(hours?|open|opening|opens|close|closes|closing|closed)\b/i;

if (!TOKEN || !SECRET) {
  console.error('hours-bot: set SWITCHBOARD_TOKEN and WEBHOOK_SECRET');
  process.exit(2);
}

const key = SECRET.startsWith('whsec_')
  ? Buffer.from(SECRET.slice(6), 'base64')
  : Buffer.from(SECRET, 'utf8');

// Returns null if the request is authentic, else why not.
function verify(headers, body, now = Date.now()) {
  const id = headers['webhook-id'];
  const ts = headers['webhook-timestamp'];
  const sigs = headers['webhook-signature'];
  if (!id || !ts || !sigs) return 'missing webhook headers';
  if (!/^\d+$/.test(ts) || Math.abs(now / 1000 - Number(ts)) > TOLERANCE_S) {
    return 'timestamp outside the tolerance';
  }
  const expected = crypto.createHmac('sha256', key).update(`${id}.${ts}.`).update(body).digest();
  for (const s of sigs.split(' ')) {
    const [version, b64] = s.split(',', 2);
    if (version !== 'v1' || !b64) continue;
    const got = Buffer.from(b64, 'base64');
    if (got.length === expected.length && crypto.timingSafeEqual(got, expected)) return null;
  }
  return 'bad signature';
}

async function call(path, body) {
  const r = await fetch(`${BASE}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${await r.text()}`);
  return r.json();
}

// Acts on one event; throws to make Switchboard retry later.
async function handle(id, event) {
  const m = event.message;
  if (event.type !== 'message' || !m || m.dir !== 'in' || typeof m.text !== 'string') return;
  if (event.conversation && event.conversation.assignee) return; // a human has it
  const conv = encodeURIComponent(event.conv);
  if (ASKS_HOURS.test(m.text)) {
    // No based_on: answer even if the customer wrote again meanwhile. client_id: a
    // retried delivery of the same event stores nothing twice.
    await call(`/v1/conversations/${conv}/messages`, { text: HOURS, client_id: `hours-bot:${id}` });
    console.log(`hours-bot: answered ${event.conv}`);
  } else {
    await call(`/v1/conversations/${conv}/handoff`, { reason: 'hours-bot: not about opening hours' });
    console.log(`hours-bot: handed ${event.conv} to humans`);
  }
}

const seen = new Map(); // webhook-id -> true, the last 10 000 (duplicates are acked, not redone)

const server = http.createServer((req, res) => {
  if (req.method !== 'POST') {
    res.writeHead(405, { allow: 'POST' }).end();
    return;
  }
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > MAX_BODY) req.destroy();
    else chunks.push(c);
  });
  req.on('end', async () => {
    const body = Buffer.concat(chunks);
    const why = verify(req.headers, body);
    if (why) {
      res.writeHead(401, { 'content-type': 'text/plain' }).end(`${why}\n`);
      return;
    }
    const id = req.headers['webhook-id'];
    if (seen.has(id)) {
      res.writeHead(204).end();
      return;
    }
    let event;
    try {
      event = JSON.parse(body.toString('utf8'));
    } catch {
      res.writeHead(400).end();
      return;
    }
    try {
      await handle(id, event);
      seen.set(id, true);
      if (seen.size > 10000) seen.delete(seen.keys().next().value);
      res.writeHead(204).end();
    } catch (e) {
      console.error(`hours-bot: ${e.message}`);
      res.writeHead(503).end(); // Switchboard retries with backoff
    }
  });
});

server.listen(PORT, HOST, () => console.log(`hours-bot: listening on http://${HOST}:${PORT}/`));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
