// SPDX-License-Identifier: MIT
// A relay between a toy network and a Switchboard hook (docs/hooks.md), plain Node. Env: PORT,
// HOOK_URL (…/v1/hooks/<name>), SECRET (as configured), NET_URL (where the network takes answers).
// The network POSTs {thread,author:{id,name},text,id} to /in; Switchboard POSTs answers to /out.
import http from 'node:http';
import { createHmac } from 'node:crypto';
const { PORT, HOOK_URL, SECRET, NET_URL } = process.env, sent = new Map();
const key = SECRET.startsWith('whsec_') ? Buffer.from(SECRET.slice(6), 'base64') : Buffer.from(SECRET);
const sign = (id, ts, body) => `v1,${createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64')}`;
const post = (url, body, h = {}) => fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...h } });
http.createServer((req, res) => { let b = ''; req.on('data', (c) => { b += c; }); req.on('end', async () => {
  const h = req.headers, now = Math.floor(Date.now() / 1000), id = h['webhook-id'], ts = h['webhook-timestamp'];
  const ok = req.url === '/out' && Math.abs(now - ts) <= 300 && h['webhook-signature']?.split(' ').includes(sign(id, ts, b));
  const r = req.url === '/in' ? await post(HOOK_URL, b, { 'webhook-id': `in_${JSON.parse(b).id}`, 'webhook-timestamp': now, 'webhook-signature': sign(`in_${JSON.parse(b).id}`, now, b) })
    : !ok ? new Response('{"error":"bad signature"}', { status: 401 }) : sent.get(id) ?? await post(NET_URL, b);
  if (ok && r.ok) sent.set(id, r); res.writeHead(r.status).end(await r.clone().text()); }); }).listen(PORT, '127.0.0.1');
