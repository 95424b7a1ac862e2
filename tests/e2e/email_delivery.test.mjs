// SPDX-License-Identifier: MIT
// Email delivery outcomes through the real daemon (docs/email.md "Outbound", docs/delivery.md):
// an SMTP server that answers 451 twice and then takes the mail (retried, delivered once),
// one that refuses the recipient with 550 (a final delivery_failed staff can see), and the
// daemon killed after SMTP took a mail and its delivery was recorded but before the outbox
// acked it (after the restart nothing is sent twice). Real Dovecot and SMTP servers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon, api, sleep } from './lib.mjs';
import { makeCA, Dovecot, Smtp } from './mailservers.mjs';

const ADDR = 'help@example.test';
let ca, imap;

before(async () => {
  ca = makeCA();
  imap = await Dovecot.start(ca);
});

after(async () => {
  await imap?.stop();
  ca?.remove();
});

let n = 0;
function mail(from, subject, body) {
  const id = `d${++n}.${Date.now()}@mail.example.org`;
  return { id, raw: `From: ${from}\nTo: <${ADDR}>\nSubject: ${subject}\nMessage-ID: <${id}>\n` +
    `Date: Sun, 29 Nov 2026 10:00:00 +0100\nContent-Type: text/plain; charset=utf-8\n\n${body}\n` };
}

// A daemon reading user's INBOX and sending through smtp, with fast outbox retries.
async function daemon(user, smtp, env = {}) {
  return Daemon.start(`mailbox help ${imap.url(user)} ${smtp.url()} ${ADDR}\n` +
    `mailbox_tls_ca ${ca.ca}\noutbox_retry_base 200ms\noutbox_retry_max 1s`, { env });
}

async function until(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

// Files a customer mail, waits for its conversation, answers it; returns {conv, out, tok}.
async function answered(d, user, text) {
  const tok = d.token('admin', 'Ada');
  const m = mail('Pat <pat@example.org>', 'Order 99', 'Where is it?');
  imap.append(user, m.raw);
  const conv = await until('the conversation', async () => {
    const list = (await api(d, 'GET', '/v1/conversations?channel=email&status=all', { token: tok })).json;
    return list.items[0]?.id;
  });
  const r = await api(d, 'POST', `/v1/conversations/${conv}/messages`, { token: tok, body: { text } });
  assert.equal(r.status, 201, r.text);
  return { conv, out: r.json.message ?? r.json, tok };
}

const transcript = async (d, tok, conv) =>
  (await api(d, 'GET', `/v1/conversations/${conv}/messages?limit=200`, { token: tok })).json.items;

test('451 twice, then the mail is taken: retried, delivered, sent once', async () => {
  const smtp = await Smtp.start(ca, { args: ['--fail-data', '2'] });
  const d = await daemon('u451', smtp);
  try {
    const { conv, out, tok } = await answered(d, 'u451', 'It ships today.');
    const t = await until('delivered', async () => {
      const items = await transcript(d, tok, conv);
      return items.some((x) => x.type === 'delivered' && x.ref === out.id) && items;
    });
    const failed = t.filter((x) => x.type === 'delivery_failed' && x.ref === out.id);
    assert.equal(failed.length, 2);
    assert.ok(failed.every((x) => x.final === false && /451/.test(x.reason)));
    assert.equal(smtp.messages().filter((x) => x.body.includes('It ships today.')).length, 1);
  } finally {
    await d.stop();
    await smtp.stop();
  }
});

test('550 for the recipient: a final delivery_failed with the server\'s reason', async () => {
  const smtp = await Smtp.start(ca, { args: ['--rcpt-reply', '550 5.1.1 no such user here'] });
  const d = await daemon('u550', smtp);
  try {
    const { conv, out, tok } = await answered(d, 'u550', 'Your refund is on its way.');
    const f = await until('delivery_failed', async () => (await transcript(d, tok, conv))
      .find((x) => x.type === 'delivery_failed' && x.ref === out.id));
    assert.equal(f.final, true);
    assert.match(f.reason, /550 5\.1\.1 no such user here/);
    const st = await api(d, 'GET', `/v1/conversations/${conv}/messages?limit=200`, { token: tok });
    assert.equal(st.status, 200);
    assert.equal(smtp.messages().length, 0);
  } finally {
    await d.stop();
    await smtp.stop();
  }
});

test('killed after SMTP took the mail and before the ack: no second mail', async () => {
  const smtp = await Smtp.start(ca);
  const d = await daemon('ukill', smtp, { SWITCHBOARD_TEST_KILL_AFTER_RECORD: '1' });
  try {
    const { conv, out, tok } = await answered(d, 'ukill', 'Sent exactly once.');
    const exit = await d.exited; // the daemon kills itself once the delivery is recorded
    assert.equal(exit.sig, 'SIGKILL');
    assert.equal(smtp.messages().filter((x) => x.body.includes('Sent exactly once.')).length, 1);
    delete d.env.SWITCHBOARD_TEST_KILL_AFTER_RECORD;
    d.spawn();
    await d.waitReady();
    // The entry comes back from the pending list, is found delivered, and is acked.
    await until('the redelivered entry acked', () => /already_delivered/.test(d.log));
    const t = await transcript(d, tok, conv);
    assert.equal(t.filter((x) => x.type === 'delivered' && x.ref === out.id).length, 1);
    assert.equal(smtp.messages().filter((x) => x.body.includes('Sent exactly once.')).length, 1);
  } finally {
    await d.stop();
    await smtp.stop();
  }
});

test('a new UIDVALIDITY: every mail is read again, none is stored twice', async () => {
  const smtp = await Smtp.start(ca);
  imap.command('uval', 'CREATE Support');
  const a = mail('Quinn <quinn@example.org>', 'First', 'one');
  const b = mail('Quinn <quinn@example.org>', 'Second', 'two');
  imap.append('uval', a.raw, 'Support');
  imap.append('uval', b.raw, 'Support');
  const d = await Daemon.start(`mailbox help ${imap.url('uval').replace('/INBOX', '/Support')} ` +
    `${smtp.url()} ${ADDR}\nmailbox_tls_ca ${ca.ca}`);
  try {
    const tok = d.token('admin', 'Ada');
    const all = async () => {
      const out = [];
      const list = (await api(d, 'GET', '/v1/conversations?channel=email&status=all', { token: tok })).json;
      for (const c of list.items) out.push(...(await transcript(d, tok, c.id)).filter((x) => x.dir === 'in'));
      return out;
    };
    await until('both mails', async () => (await all()).length === 2);
    // The folder is deleted and made again (a restored backup, a migration): new UIDs.
    imap.command('uval', 'DELETE Support', 'INBOX');
    imap.command('uval', 'CREATE Support', 'INBOX');
    imap.append('uval', a.raw, 'Support');
    imap.append('uval', b.raw, 'Support');
    const c = mail('Quinn <quinn@example.org>', 'Third', 'three');
    imap.append('uval', c.raw, 'Support');
    const items = await until('the third mail', async () => {
      const got = await all();
      return got.some((x) => x.ext?.message_id === c.id) && got;
    }, 30000);
    for (const m of [a, b, c])
      assert.equal(items.filter((x) => x.ext?.message_id === m.id).length, 1, m.id);
    assert.match(d.log, /uidvalidity/);
  } finally {
    await d.stop();
    await smtp.stop();
  }
});

test('credentials from mailbox_password_file serve IMAP and SMTP AUTH', async () => {
  const smtp = await Smtp.start(ca, { args: ['--auth', 'helpdesk:secret'] });
  const fs = await import('node:fs');
  const pwFile = `${smtp.dir}/help.pass`;
  fs.writeFileSync(pwFile, 'secret\n');
  const imapUrl = imap.url('upw').replace(':secret@', '@'); // no password in the URL
  const d = await Daemon.start(`mailbox help ${imapUrl} smtp://helpdesk@localhost:${smtp.port} ` +
    `${ADDR}\nmailbox_password_file help ${pwFile}\nmailbox_tls_ca ${ca.ca}`);
  try {
    await answered(d, 'upw', 'Authenticated answer.');
    const m = await until('the mail', async () => smtp.messages()
      .find((x) => x.body.includes('Authenticated answer.')));
    assert.equal(m.headers['x-auth'], 'helpdesk');
    assert.equal(m.headers['x-tls'], 'yes');
  } finally {
    await d.stop();
    await smtp.stop();
  }
});
