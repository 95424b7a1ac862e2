// SPDX-License-Identifier: MIT
// SLA notifications end to end (docs/sla.md, "Notifications"): two daemons on one Redis,
// a real Dovecot and SMTP server. An SLA step injected into the events stream (as the
// functions publish it) lands in the console notification list of exactly the people its
// targets name, once although both daemons add it; the read mark; and the mail goes to
// those of them whose preference is not `none`, once. And a real breach, fired by the two
// engines on a shared test clock, mails everyone on the conversation's channel once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon, api } from './lib.mjs';
import { makeCA, Dovecot, Smtp } from './mailservers.mjs';
import { Redis, injectStep, addStaff, until } from './sla_notify_lib.mjs';

let ca, imap, smtp, redis, d1, d2, admin, staff;
const ADDR = 'support@example.test';

before(async () => {
  ca = makeCA();
  imap = await Dovecot.start(ca);
  smtp = await Smtp.start(ca);
  redis = await Redis.start();
  const conf = `redis ${redis.url()}\nmailbox support ${imap.url('support')} ${smtp.url()} ${ADDR}\n` +
    `mailbox_tls_ca ${ca.ca}\n`;
  // a real policy for urgent conversations only (the last test fires it); one clock file
  const sla = 'sla urgentq channel=* priority=urgent first=2m next=5m resolve=1d\n' +
    'escalate urgentq 100% everyone\n';
  d1 = await Daemon.start(conf + sla, { testClock: true });
  d2 = await Daemon.start(conf + sla, { env: { SWITCHBOARD_TEST_CLOCK: d1.clockFile } });
  admin = d1.token('admin', 'Root');
  staff = {
    ada: addStaff(d1, 'Ada', 'agent', { notify: 'assigned' }), // every channel
    bo: addStaff(d1, 'Bo', 'agent', { channels: 'webchat', notify: 'assigned' }), // not email
    cy: addStaff(d1, 'Cy', 'admin', { notify: 'none' }), // console only
    di: addStaff(d1, 'Di', 'exec', { notify: 'assigned' }), // role:exec
    ed: addStaff(d1, 'Ed', 'exec', { channels: 'email' }), // role:exec, no mail preference
    fay: addStaff(d1, 'Fay', 'agent', { channels: 'email', notify: 'assigned' }),
  };
});

after(async () => {
  await d1?.stop();
  await d2?.stop();
  await redis?.stop();
  await smtp?.stop();
  await imap?.stop();
  ca?.remove();
});

// A header's text with its RFC 2047 encoded words decoded.
function subject(mail) {
  return (mail.headers.subject ?? '').replace(/\?=\s+=\?/g, '?==?').replace(/=\?utf-8\?([bq])\?([^?]*)\?=/gi,
    (_, enc, t) => (enc.toLowerCase() === 'b' ? Buffer.from(t, 'base64')
      : Buffer.from(t.replace(/_/g, ' ').replace(/=([0-9a-f]{2})/gi, (x, h) => String.fromCharCode(parseInt(h, 16))), 'latin1'))
      .toString('utf8'));
}

// A mail's body with quoted-printable undone.
const text = (mail) => Buffer.from(mail.body.replace(/=\r?\n/g, '')
  .replace(/=([0-9A-F]{2})/g, (x, h) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');

const notifs = async (d, who, q = '') => api(d, 'GET', `/v1/notifications${q}`, { token: who.token });

async function emailConversation(subject, body) {
  const mid = `<sla.${Date.now()}.${Math.random()}@mail.example.org>`;
  imap.append('support', `From: Ana Lima <ana@example.org>\nTo: Support <${ADDR}>\n` +
    `Subject: ${subject}\nDate: Sun, 29 Nov 2026 10:00:00 +0100\nMessage-ID: ${mid}\n` +
    `MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n${body}\n`);
  let conv;
  await until(async () => {
    const items = (await api(d1, 'GET', '/v1/conversations?channel=email&status=all&limit=200',
      { token: admin })).json.items;
    conv = items.find((c) => c.subject === subject);
    return conv;
  }, () => `the conversation "${subject}"\n${d1.log.slice(-2000)}`);
  return (await api(d1, 'GET', `/v1/conversations/${conv.id}`, { token: admin })).json;
}

// Both daemons' notifiers have handled event id (each logs notif.add for it).
const bothAdded = (id) => until(() => [d1, d2].every((d) => d.log.includes(`notif.add event=${id} `)),
  () => `both daemons adding ${id}:\n${d1.log.slice(-1500)}\n${d2.log.slice(-1500)}`);

test('an SLA breach reaches exactly its targets, once, with two daemons', async () => {
  const conv = await emailConversation('Printer on fire', 'It smokes and beeps.');
  const m = injectStep(redis, conv, { targets: ['everyone', 'role:exec'] });
  await bothAdded(m.id);
  // everyone on email = Ada (every channel), Cy (admin), Fay (email) and Root (the admin
  // token's staff record); role:exec = Di, Ed
  const want = ['ada', 'cy', 'di', 'ed', 'fay'];
  assert.ok(d1.log.includes(`notif.add event=${m.id} targets=6 `) || d2.log.includes(`notif.add event=${m.id} targets=6 `));
  for (const [k, who] of Object.entries(staff)) {
    for (const d of [d1, d2]) {
      const r = await notifs(d, who);
      assert.equal(r.status, 200, r.text);
      const items = r.json.items.filter((x) => x.conv === conv.id);
      assert.equal(items.length, want.includes(k) ? 1 : 0, `${k}: ${r.text}`);
      if (!want.includes(k)) continue;
      assert.deepEqual(items[0], { id: m.id, type: 'sla_breach', conv: conv.id,
        clock: 'first_response', percent: 100, policy: 'quick', due: m.due, ts: m.ts,
        subject: 'Printer on fire', customer: 'Ana Lima' });
      assert.equal(r.json.unread, 1);
    }
  }
  assert.equal(Number(redis.cmd('ZCARD', `sb:notif:${staff.ada.id}`)), 1);

  // The breach mail: to Ada, Di and Fay (Cy: none; Ed asked for no mail; Bo is not a target).
  const mails = () => smtp.messages().filter((x) => /^\[SLA breach\] Printer/.test(subject(x)));
  await until(() => mails().length >= 3, () => `3 breach mails, got ${mails().length}\n${d1.log.slice(-2000)}`);
  // each recipient was handled by both daemons: one sent it, the other skipped it
  for (const who of [staff.ada, staff.di, staff.fay])
    await until(() => {
      const all = d1.log + d2.log;
      const re = (w) => new RegExp(`email\\.notify\\.${w} conv=${conv.id} staff=${who.id} event=${m.seq}`, 'g');
      return (all.match(re('sent')) ?? []).length === 1 && (all.match(re('skip')) ?? []).length === 1;
    }, () => `one sent and one skipped mail for ${who.name}`);
  const got = mails();
  assert.deepEqual(got.map((x) => x.headers['x-rcptto']).sort(),
    ['ada@corp.test', 'di@corp.test', 'fay@corp.test']);
  const mail = got[0];
  assert.match(subject(mail), /^\[SLA breach\] Printer on fire — first response overdue \[#[0-9a-z]{10}\]$/);
  assert.match(text(mail), /It smokes and beeps\./);
  assert.match(text(mail), new RegExp(`/console#/c/${conv.id}`));
  assert.match(text(mail), /first response of this conversation was due .* \(policy quick, 100 %\)/);
  assert.match(mail.headers['reply-to'], /@example\.test/);
  assert.notEqual(mail.headers['reply-to'], ADDR, 'a signed reply address, not the mailbox');
});

test('a warning mail says when it is due; read marks count unread', async () => {
  const conv = await emailConversation('Scanner jams', 'Paper everywhere.');
  const ts = Date.now();
  const m = injectStep(redis, conv, { type: 'sla_warning', percent: 50, targets: [staff.fay.id],
    ts, due: ts + 120000 });
  await bothAdded(m.id);
  const mail = await (async () => {
    let x;
    await until(() => (x = smtp.messages().find((y) => /^\[SLA warning\] Scanner jams/.test(subject(y)))),
      () => 'the warning mail');
    return x;
  })();
  assert.equal(mail.headers['x-rcptto'], 'fay@corp.test');
  assert.match(subject(mail), /— first response due in 2m \[#/);

  let r = await notifs(d2, staff.fay);
  assert.equal(r.json.items[0].id, m.id, 'newest first');
  assert.equal(r.json.unread, 2);
  // read up to the first breach only
  const first = r.json.items[1];
  r = await api(d1, 'POST', '/v1/notifications/read', { token: staff.fay.token, body: { until: first.ts } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.unread, 1);
  r = await notifs(d2, staff.fay, '?limit=1');
  assert.equal(r.json.items.length, 1);
  assert.equal(r.json.unread, 1);
  // no body: everything until now
  r = await api(d2, 'POST', '/v1/notifications/read', { token: staff.fay.token });
  assert.equal(r.json.unread, 0);
  assert.equal((await notifs(d1, staff.fay)).json.unread, 0);
});

test('the notification endpoints refuse what they cannot serve', async () => {
  let r = await notifs(d1, staff.ada, '?limit=0');
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'bad_request');
  r = await notifs(d1, staff.ada, '?limit=501');
  assert.equal(r.status, 400);
  r = await api(d1, 'POST', '/v1/notifications/read', { token: staff.ada.token, body: { until: 'soon' } });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'bad_request');
  r = await api(d1, 'POST', '/v1/notifications/read', { token: staff.ada.token, raw: '{"until":' });
  assert.equal(r.status, 400);
  r = await api(d1, 'GET', '/v1/notifications');
  assert.equal(r.status, 401);
  r = await api(d1, 'GET', '/v1/notifications', { token: d1.token('bot', 'Robo') }); // not a person
  assert.equal(r.status, 403);
});

test('a real breach, fired by the engine on the shared clock, mails everyone on the channel once', async () => {
  const conv = await emailConversation('Invoice twice', 'You charged me twice.');
  const r = await api(d2, 'POST', `/v1/conversations/${conv.id}/priority`, { token: admin,
    body: { priority: 'urgent' } });
  assert.equal(r.status, 200, r.text);
  const planned = await until(async () => {
    const c = (await api(d1, 'GET', `/v1/conversations/${conv.id}`, { token: admin })).json;
    return c.sla.policy === 'urgentq' ? c : null;
  }, () => 'the urgent policy planned');
  // two minutes later on both daemons' clock
  d1.setClockOffset(planned.sla.first_response_due - Date.now() + 1000);
  const mails = () => smtp.messages().filter((x) => /^\[SLA breach\] Invoice twice/.test(subject(x)));
  // everyone on email whose preference is not none: Ada (every channel) and Fay (email)
  await until(() => mails().length >= 2, () => `2 breach mails, got ${mails().length}\n${d1.log.slice(-2000)}`);
  const msgs = (await api(d1, 'GET', `/v1/conversations/${conv.id}/messages`, { token: admin })).json.items;
  const breach = msgs.filter((m) => m.type === 'sla_breach');
  assert.equal(breach.length, 1, 'fired once by the two engines');
  assert.deepEqual(breach[0].targets, ['everyone']);
  for (const who of [staff.ada, staff.fay])
    await until(() => {
      const all = d1.log + d2.log;
      const re = (w) => new RegExp(`email\\.notify\\.${w} conv=${conv.id} staff=${who.id} event=${breach[0].seq}`, 'g');
      return (all.match(re('sent')) ?? []).length === 1 && (all.match(re('skip')) ?? []).length === 1;
    }, () => `one sent and one skipped mail for ${who.name}`);
  assert.deepEqual(mails().map((x) => x.headers['x-rcptto']).sort(), ['ada@corp.test', 'fay@corp.test']);
  // and the console lists of those it reaches
  const n = await notifs(d1, staff.ada);
  const item = n.json.items.find((x) => x.id === breach[0].id);
  assert.ok(item && item.type === 'sla_breach', n.text);
  assert.equal(item.subject, 'Invoice twice', 'the list says whom it is about');
  const nb = await notifs(d1, staff.bo);
  assert.ok(!nb.json.items.some((x) => x.conv === conv.id), 'Bo (web chat only) is not told');
});

test('each daemon alone still notifies', async () => {
  const conv = await emailConversation('Fax silent', 'Nothing comes out.');
  await d1.stop();
  const m = injectStep(redis, conv, { type: 'escalated', percent: 200, targets: ['role:admin'] });
  await until(() => d2.log.includes(`notif.add event=${m.id} targets=2 added=2`), () => 'd2 adding it');
  const r = await notifs(d2, staff.cy);
  const it = r.json.items.find((x) => x.id === m.id); // (the real breach above is newer)
  assert.ok(it, r.text);
  assert.equal(it.type, 'escalated');
  d1 = null;
});
