// SPDX-License-Identifier: MIT
// Email end to end (docs/email.md): a real Dovecot (IMAP over TLS from a test CA) and a real
// SMTP server (aiosmtpd, STARTTLS) beside the real daemon with one `mailbox` line. Mail is
// filed by IMAP APPEND as a mail client would; answers are read from what the SMTP server
// received. Covers ingest, a thread of replies (In-Reply-To, References only, a changed
// subject), a stranger copying a subject or Message-ID, duplicates, an auto-reply, a
// bounce, mail that arrives while the daemon is down, staff answering by mail, and a web
// chat visitor who left getting the answer by mail and answering there.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon, FrameSocket, api, sleep } from './lib.mjs';
import { makeCA, Dovecot, Smtp } from './mailservers.mjs';

let ca, imap, smtp, d, tok;
const ADDR = 'support@example.test';

before(async () => {
  ca = makeCA();
  imap = await Dovecot.start(ca);
  smtp = await Smtp.start(ca);
  d = await Daemon.start(
    `mailbox support ${imap.url('support')} ${smtp.url()} ${ADDR}\nmailbox_tls_ca ${ca.ca}\n` +
    'webchat_email_after 1500ms\nsite default site-secret http://allowed.example');
  tok = d.token('admin', 'Ada Admin');
});

after(async () => {
  if (process.env.SB_E2E_LOG) (await import('node:fs')).writeFileSync(process.env.SB_E2E_LOG, d.log);
  await d?.stop();
  await smtp?.stop();
  await imap?.stop();
  ca?.remove();
});

let n = 0;
// A raw message as mail clients write them (CRLF is applied by append).
function mail({ from = 'Ana Lima <ana@example.org>', subject = 'Printer on fire', id,
  inReplyTo, references, body = 'Hello, it smokes.', headers = '' } = {}) {
  const mid = id ?? `<c${++n}.${Date.now()}@mail.example.org>`;
  return {
    id: mid.replace(/[<>]/g, ''),
    raw: `From: ${from}\nTo: Support <${ADDR}>\nSubject: ${subject}\n` +
      `Date: Sun, 29 Nov 2026 10:00:00 +0100\nMessage-ID: ${mid}\n` +
      (inReplyTo ? `In-Reply-To: <${inReplyTo}>\n` : '') +
      (references ? `References: ${references.map((r) => `<${r}>`).join(' ')}\n` : '') +
      `MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n${headers}\n${body}\n`,
  };
}

const convs = async () => (await api(d, 'GET', '/v1/conversations?channel=email&status=all&limit=200',
  { token: tok })).json.items;
const transcript = async (conv) =>
  (await api(d, 'GET', `/v1/conversations/${conv}/messages?limit=200`, { token: tok })).json.items;

// Waits until the message with this Message-ID is in some conversation; returns it.
async function stored(messageId, timeoutMs = 10000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    for (const c of await convs()) {
      const m = (await transcript(c.id)).find((x) => x.ext?.message_id === messageId);
      if (m) return m;
    }
    await sleep(50);
  }
  throw new Error(`${messageId} not stored in ${timeoutMs} ms:\n${d.log.slice(-3000)}`);
}

async function reply(conv, text) {
  const r = await api(d, 'POST', `/v1/conversations/${conv}/messages`, { token: tok, body: { text } });
  assert.equal(r.status, 201, r.text);
  return r.json.message ?? r.json;
}

test('a customer mail becomes a conversation; the answer goes out as a threaded reply', async () => {
  const m1 = mail({ body: 'Hello, it smokes.\n\nOn Sat, Bob wrote:\n> old stuff' });
  imap.append('support', m1.raw);
  const got = await stored(m1.id);
  assert.equal(got.text, 'Hello, it smokes.');
  assert.equal(got.dir, 'in');
  assert.equal(got.channel, 'email');
  assert.match(got.ext.quoted, /old stuff/);
  const conv = (await api(d, 'GET', `/v1/conversations/${got.conv}`, { token: tok })).json;
  assert.equal(conv.subject, 'Printer on fire');
  assert.equal(conv.contact.name, 'Ana Lima');

  const out = await reply(got.conv, 'Unplug it, please.');
  const sent = await smtp.waitFor((x) => x.body.includes('Unplug it, please.'));
  assert.equal(sent.headers['x-rcptto'], 'ana@example.org');
  assert.equal(sent.headers['in-reply-to'], `<${m1.id}>`);
  assert.match(sent.headers.references, new RegExp(`<${m1.id.replace(/\./g, '\\.')}>`));
  assert.match(sent.headers.subject, /^Re: Printer on fire \[#[0-9a-z]{10}\]$/);
  assert.match(sent.headers.from, /support@example\.test/);
  const ourId = sent.headers['message-id'].replace(/[<>]/g, '');
  assert.ok(ourId.includes(out.id), 'our Message-ID derives from the message id');

  // The customer answers our mail (In-Reply-To ours): same conversation.
  const m2 = mail({ subject: sent.headers.subject.replace(/^Re:/, 'RE:'), inReplyTo: ourId,
    references: [m1.id, ourId], body: 'Done, thanks.' });
  imap.append('support', m2.raw);
  assert.equal((await stored(m2.id)).conv, got.conv);

  // Outlook drops In-Reply-To: References alone still thread.
  const m3 = mail({ subject: 'RE: Printer on fire', references: [m1.id, ourId],
    body: 'One more thing.' });
  imap.append('support', m3.raw);
  assert.equal((await stored(m3.id)).conv, got.conv);

  // A reply with a changed subject threads by its ids.
  const m4 = mail({ subject: 'Another question', inReplyTo: m3.id, body: 'And the scanner?' });
  imap.append('support', m4.raw);
  assert.equal((await stored(m4.id)).conv, got.conv);

  // A delivered event on our answer.
  const until = Date.now() + 10000;
  while (Date.now() < until &&
    !(await transcript(got.conv)).some((x) => x.type === 'delivered' && x.ref === out.id)) await sleep(50);
  assert.ok((await transcript(got.conv)).some((x) => x.type === 'delivered' && x.ref === out.id));
});

test('a stranger copying a Message-ID or a subject tag gets a conversation of their own', async () => {
  const m1 = mail({ from: 'Carla <carla@example.org>', subject: 'Invoice 17' });
  imap.append('support', m1.raw);
  const first = await stored(m1.id);
  await reply(first.conv, 'Here is invoice 17.');
  const sent = await smtp.waitFor((x) => x.body.includes('Here is invoice 17.'));
  const ourId = sent.headers['message-id'].replace(/[<>]/g, '');

  const s1 = mail({ from: 'Mallory <mallory@evil.example>', subject: sent.headers.subject,
    inReplyTo: ourId, references: [m1.id, ourId], body: 'Let me in.' });
  imap.append('support', s1.raw);
  const got = await stored(s1.id);
  assert.notEqual(got.conv, first.conv);
  assert.ok(!(await transcript(first.conv)).some((x) => x.text === 'Let me in.'));
});

test('the same mail twice (a copy, a restart) is stored once', async () => {
  const m1 = mail({ from: 'Dan <dan@example.org>', subject: 'Twice' });
  imap.append('support', m1.raw);
  imap.append('support', m1.raw);
  const first = await stored(m1.id);
  const marker = mail({ from: 'Dan <dan@example.org>', subject: 'After', inReplyTo: m1.id });
  imap.append('support', marker.raw);
  await stored(marker.id); // the copy was handled before this one (UID order)
  const same = (await transcript(first.conv)).filter((x) => x.ext?.message_id === m1.id);
  assert.equal(same.length, 1);
});

test('an auto-reply is stored as automatic and leaves the conversation answered', async () => {
  const m1 = mail({ from: 'Eve <eve@example.org>', subject: 'Hours?' });
  imap.append('support', m1.raw);
  const got = await stored(m1.id);
  await reply(got.conv, 'We open at nine.');
  const sent = await smtp.waitFor((x) => x.body.includes('We open at nine.'));
  const ourId = sent.headers['message-id'].replace(/[<>]/g, '');
  const before = (await api(d, 'GET', `/v1/conversations/${got.conv}`, { token: tok })).json;
  assert.equal(before.awaiting_since, null);

  const ooo = mail({ from: 'Eve <eve@example.org>', subject: 'Automatic reply: Hours?',
    inReplyTo: ourId, headers: 'Auto-Submitted: auto-replied\nX-Auto-Response-Suppress: All\n',
    body: 'I am out of the office until Monday.' });
  imap.append('support', ooo.raw);
  const a = await stored(ooo.id);
  assert.equal(a.conv, got.conv);
  assert.equal(a.auto, true);
  const conv = (await api(d, 'GET', `/v1/conversations/${got.conv}`, { token: tok })).json;
  assert.equal(conv.awaiting_since, null, 'an auto-reply does not wait for an answer');
  assert.equal(smtp.messages().filter((x) => x.headers['x-rcptto'] === 'eve@example.org').length, 1,
    'nothing answers an auto-reply');
});

test('a bounce of our answer becomes delivery_failed on it and flags the address', async () => {
  const m1 = mail({ from: 'Finn <finn@example.org>', subject: 'Parcel' });
  imap.append('support', m1.raw);
  const got = await stored(m1.id);
  const out = await reply(got.conv, 'It left today.');
  const sent = await smtp.waitFor((x) => x.body.includes('It left today.'));
  const ourId = sent.headers['message-id'];
  const dsn = `From: Mail Delivery System <MAILER-DAEMON@mx.example.org>
To: ${ADDR}
Subject: Undelivered Mail Returned to Sender
Date: Sun, 29 Nov 2026 10:05:00 +0100
Message-ID: <dsn.${Date.now()}@mx.example.org>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

The mail system could not deliver your message to finn@example.org.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; finn@example.org
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <finn@example.org>: Recipient address rejected

--B
Content-Type: text/rfc822-headers

From: ${ADDR}
To: finn@example.org
Subject: ${sent.headers.subject}
Message-ID: ${ourId}

--B--
`;
  imap.append('support', dsn);
  const until = Date.now() + 10000;
  let failed;
  while (Date.now() < until && !failed) {
    failed = (await transcript(got.conv)).find((x) => x.type === 'delivery_failed' && x.ref === out.id);
    if (!failed) await sleep(50);
  }
  assert.ok(failed, `no delivery_failed:\n${d.log.slice(-2000)}`);
  assert.match(failed.reason, /5\.1\.1/);
  const contact = (await api(d, 'GET', `/v1/contacts/${got.author.id}`, { token: tok })).json;
  assert.match(JSON.stringify(contact), /email_bounced/);
});

test('mail that arrives while the daemon is down is read after it starts, once', async () => {
  const m1 = mail({ from: 'Gil <gil@example.org>', subject: 'Before' });
  imap.append('support', m1.raw);
  const first = await stored(m1.id);
  const m2 = mail({ from: 'Gil <gil@example.org>', subject: 'While down', inReplyTo: m1.id });
  await d.restart({ kill9: true, before: () => imap.append('support', m2.raw) });
  assert.equal((await stored(m2.id)).conv, first.conv);
  const t = await transcript(first.conv);
  assert.equal(t.filter((x) => x.ext?.message_id === m1.id).length, 1);
  assert.equal(t.filter((x) => x.ext?.message_id === m2.id).length, 1);
});

test('Dovecot stopped and restarted under the daemon: nothing lost, nothing twice', async () => {
  const m1 = mail({ from: 'Hana <hana@example.org>', subject: 'Outage' });
  imap.append('support', m1.raw);
  const first = await stored(m1.id);
  await imap.kill();
  await imap.run();
  const m2 = mail({ from: 'Hana <hana@example.org>', subject: 'Re: Outage', inReplyTo: m1.id });
  imap.append('support', m2.raw);
  assert.equal((await stored(m2.id, 30000)).conv, first.conv);
  const t = await transcript(first.conv);
  assert.equal(t.filter((x) => x.dir === 'in').length, 2);
});

test('staff notified by mail answer by replying; a forged answer never reaches the customer', async () => {
  d.sbctl('staff', 'add', '--name', 'Sam Staff', '--email', 'sam@corp.test', '--role', 'agent');
  const sam = JSON.parse(d.sbctl('staff', 'list', '--json')).find((s) => s.email === 'sam@corp.test');
  assert.match(d.sbctl('staff', 'notify', sam.id, 'new'), /notify new/);

  const m1 = mail({ from: 'Ivo <ivo@example.org>', subject: 'Broken hinge', body: 'The lid fell off.' });
  imap.append('support', m1.raw);
  const got = await stored(m1.id);
  const note = await smtp.waitFor((x) => x.headers['x-rcptto'] === 'sam@corp.test' &&
    x.body.includes('The lid fell off.'));
  assert.match(note.headers.subject, /Broken hinge/);
  assert.equal(note.headers['auto-submitted'], 'auto-generated');
  const replyTo = note.headers['reply-to'].replace(/.*<|>.*/g, '');
  assert.match(replyTo, new RegExp(`^support\\+${got.conv}\\.[0-9a-f]{16}@example\\.test$`));

  // Sam answers from his mail client: the quoted notification is not part of the answer.
  const ans = mail({ from: 'Sam Staff <sam@corp.test>', subject: `Re: ${note.headers.subject}`,
    inReplyTo: note.headers['message-id'].replace(/[<>]/g, ''),
    body: 'A new hinge is on its way.\n\nOn Sun, Switchboard wrote:\n> The lid fell off.' })
  const answer = { ...ans, raw: ans.raw.replace(`To: Support <${ADDR}>`, `To: <${replyTo}>`) };
  imap.append('support', answer.raw);
  const out = await smtp.waitFor((x) => x.headers['x-rcptto'] === 'ivo@example.org' &&
    x.body.includes('A new hinge is on its way.'));
  assert.ok(!out.body.includes('The lid fell off.'), 'the quoted part stays out');
  assert.equal(out.headers['in-reply-to'], `<${m1.id}>`);
  const t = await transcript(got.conv);
  const staffMsg = t.find((x) => x.text === 'A new hinge is on its way.');
  assert.equal(staffMsg.author.type, 'staff');
  assert.equal(staffMsg.author.id, sam.id);

  // Someone else writing to Sam's reply address, and Sam with a tampered signature.
  const forged = mail({ from: 'Mallory <mallory@evil.example>', subject: 'Re: x', body: 'Refund me twice.' });
  imap.append('support', forged.raw.replace(`To: Support <${ADDR}>`, `To: <${replyTo}>`));
  const badSig = replyTo.replace(/\.([0-9a-f])/, (_, c) => `.${c === '0' ? '1' : '0'}`);
  const tampered = mail({ from: 'Sam Staff <sam@corp.test>', subject: 'Re: x', body: 'Free hinges for all.' });
  imap.append('support', tampered.raw.replace(`To: Support <${ADDR}>`, `To: <${badSig}>`));
  const until = Date.now() + 10000;
  let refused = [];
  while (Date.now() < until && refused.length < 2) {
    refused = (await transcript(got.conv)).filter((x) => x.type === 'rejected');
    if (refused.length < 2) await sleep(50);
  }
  assert.equal(refused.length, 2, d.log.slice(-2000));
  assert.deepEqual(refused.map((x) => x.from).sort(), ['mallory@evil.example', 'sam@corp.test']);
  assert.ok(refused.every((x) => x.channel === 'email' && x.reason));
  const all = smtp.messages().filter((x) => x.headers['x-rcptto'] === 'ivo@example.org');
  assert.ok(!all.some((x) => /Refund me twice|Free hinges/.test(x.body)));
  assert.ok(!(await transcript(got.conv)).some((x) => x.kind === 'message' &&
    /Refund me twice|Free hinges/.test(x.text)));
});

// A web chat visitor (switchboard.visitor.v1).
class Visitor extends FrameSocket {
  static open() {
    return this.connect(`${d.url.replace('http', 'ws')}/v1/visitor/ws?site=default`,
      'switchboard.visitor.v1', { headers: { origin: 'http://allowed.example' } });
  }

  async hello(extra = {}) {
    this.send({ type: 'hello', site: 'default', token: null, last_seq: null, ...extra });
    return this.next('welcome');
  }
}

test('a web chat visitor who left gets the answer by mail and answers there', async () => {
  const v = await Visitor.open();
  const w = await v.hello({ name: 'Jo' });
  v.send({ type: 'message', client_id: 'j1', text: 'Is the shop open on Sunday?' });
  const ack = await v.next('ack');
  v.send({ type: 'email', email: 'jo@example.org' });
  await v.next('status', (f) => f.status === 'email_saved');
  await v.close();

  const out = await reply(ack.conv, 'Yes, from ten to four.');
  const sent = await smtp.waitFor((x) => x.headers['x-rcptto'] === 'jo@example.org' &&
    x.body.includes('from ten to four'));
  const ourId = sent.headers['message-id'].replace(/[<>]/g, '');
  assert.ok(ourId.includes(out.id));

  // Jo answers the mail: it lands in the same (web chat) conversation.
  const m = mail({ from: 'Jo <jo@example.org>', subject: sent.headers.subject, inReplyTo: ourId,
    body: 'Great, see you then.\n\nOn Sun, Support wrote:\n> Yes, from ten to four.' });
  imap.append('support', m.raw);
  let got;
  for (const until = Date.now() + 10000; !got && Date.now() < until; await sleep(50))
    got = (await transcript(ack.conv)).find((x) => x.ext?.message_id === m.id);
  assert.ok(got, `not in the chat:\n${d.log.slice(-3000)}`);
  assert.equal(got.conv, ack.conv);
  assert.equal(got.channel, 'email');
  assert.equal(got.text, 'Great, see you then.');

  // Back in the chat, Jo sees both the answer and their own mail.
  const v2 = await Visitor.open();
  const w2 = await v2.hello({ token: w.token });
  const texts = w2.history.map((x) => x.text);
  assert.ok(texts.includes('Yes, from ten to four.'));
  assert.ok(texts.includes('Great, see you then.'));
  await v2.close();
});

test('a visitor still in the chat sees the answer there and gets no mail', async () => {
  const v = await Visitor.open();
  await v.hello({ name: 'Kim' });
  v.send({ type: 'message', client_id: 'k1', text: 'Do you ship to Norway?' });
  const ack = await v.next('ack');
  v.send({ type: 'email', email: 'kim@example.org' });
  await v.next('status', (f) => f.status === 'email_saved');
  await reply(ack.conv, 'We do.');
  await v.next('message', (f) => f.text === 'We do.');
  // A later answer to someone who left does go out: once it has, the first one had its
  // chance (both were due) and was dropped as seen.
  await v.close();
  await reply(ack.conv, 'Shipping takes a week.');
  await smtp.waitFor((x) => x.headers['x-rcptto'] === 'kim@example.org' &&
    x.body.includes('Shipping takes a week.'));
  assert.ok(!smtp.messages().some((x) => x.headers['x-rcptto'] === 'kim@example.org' &&
    x.body.includes('We do.')));
});
