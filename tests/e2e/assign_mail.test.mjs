// SPDX-License-Identifier: MIT
// Assignment by mail (docs/email.md, "Staff by email"): with an email connector running, a
// conversation handed to someone with POST …/assign is mailed to them when their preference
// is `assigned` or `new`, to nobody else, and not when they took it themselves. A real
// Dovecot and SMTP server (aiosmtpd) beside the real daemon; mail is read from what the
// SMTP server received.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon, api } from './lib.mjs';
import { makeCA, Dovecot, Smtp } from './mailservers.mjs';
import { addStaff } from './sla_notify_lib.mjs';

let ca, imap, smtp, d, bot;
const staff = {};
const ADDR = 'support@example.test';

before(async () => {
  ca = makeCA();
  imap = await Dovecot.start(ca);
  smtp = await Smtp.start(ca);
  d = await Daemon.start(`mailbox support ${imap.url('support')} ${smtp.url()} ${ADDR}\n` +
    `mailbox_tls_ca ${ca.ca}\n`);
  staff.ann = addStaff(d, 'Ann', 'agent', { notify: 'assigned' });
  staff.bea = addStaff(d, 'Bea', 'agent', { notify: 'assigned' });
  staff.cy = addStaff(d, 'Cy', 'agent', { notify: 'none' });
  staff.di = addStaff(d, 'Di', 'agent', { notify: 'new' });
  bot = d.token('bot', 'Intake');
});

after(async () => {
  await d?.stop();
  await smtp?.stop();
  await imap?.stop();
  ca?.remove();
});

const assign = async (conv, to, who) => {
  const r = await api(d, 'POST', `/v1/conversations/${conv}/assign`, { token: who.token, body: { to } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.changed, true);
};
const assignedMails = (rcpt) => smtp.messages().filter((x) => x.headers['x-rcptto'] === rcpt &&
  /Assigned to you/.test(x.headers.subject ?? ''));

test('the assignee is mailed per their preference; nobody else, not a self-assignment', async () => {
  const r = await api(d, 'POST', '/v1/inbound', {
    token: bot, body: { contact: { email: 'dora@example.org', name: 'Dora' }, subject: 'INV-2291 twice', text: 'charged twice' },
  });
  assert.equal(r.status, 201, r.text);
  const conv = r.json.conv;
  await assign(conv, staff.cy.id, staff.ann); // preference none: no mail
  await assign(conv, staff.ann.id, staff.ann); // took it herself: no mail
  await assign(conv, staff.bea.id, staff.ann); // preference assigned
  const toBea = await smtp.waitFor((x) => x.headers['x-rcptto'] === 'bea@corp.test' &&
    /Assigned to you/.test(x.headers.subject ?? ''));
  assert.match(toBea.headers.subject, /INV-2291 twice/);
  // answering it answers the customer: Bea's signed reply address for this conversation
  assert.ok(toBea.headers['reply-to'].includes(`support+${conv}.`), toBea.headers['reply-to']);
  await assign(conv, staff.di.id, staff.bea); // preference new covers assignments too
  await smtp.waitFor((x) => x.headers['x-rcptto'] === 'di@corp.test' &&
    /Assigned to you/.test(x.headers.subject ?? ''));
  // the feed is handled in order: by now the earlier ones would have been sent
  assert.equal(assignedMails('cy@corp.test').length, 0);
  assert.equal(assignedMails('ann@corp.test').length, 0);
  assert.equal(assignedMails('bea@corp.test').length, 1);
});
