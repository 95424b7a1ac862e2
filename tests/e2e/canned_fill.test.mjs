// SPDX-License-Identifier: MIT
// The console's canned-reply logic (gateway/assets/console/canned_fill.js) on its own:
// placeholders, the `/word` under the caret, matching and replacing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fill, slashAt, match, replaceSpan } from '../../gateway/assets/console/canned_fill.js';

const values = { contact: { name: 'Dana Díaz', email: 'dana@example.com' }, agent: { name: 'Carla' },
  conversation: { id: 'c_01abc' } };

test('placeholders are filled, missing ones become empty, unknown ones stay', () => {
  assert.equal(fill('Hi {{contact.name}}, {{agent.name}} here ({{ conversation.id }}, {{contact.email}})', values),
    'Hi Dana Díaz, Carla here (c_01abc, dana@example.com)');
  assert.equal(fill('Hi {{contact.name}}!', { contact: {} }), 'Hi !');
  assert.equal(fill('Hi {{contact.name}}!'), 'Hi !');
  assert.equal(fill('{{agent.name}}{{agent.name}}', values), 'CarlaCarla');
  assert.equal(fill('{{contact.phone}} {{x}} {contact.name}', values), '{{contact.phone}} {{x}} {contact.name}');
  // A value is inserted as text: a name with braces or $ patterns is not re-expanded.
  assert.equal(fill('{{contact.name}}', { contact: { name: '{{agent.name}} $& $1' }, agent: { name: 'X' } }),
    '{{agent.name}} $& $1');
});

test('the /word under the caret', () => {
  assert.deepEqual(slashAt('/tha', 4), { start: 0, end: 4, query: 'tha' });
  assert.deepEqual(slashAt('Hello /', 7), { start: 6, end: 7, query: '' });
  assert.deepEqual(slashAt('a\n/ref more', 6), { start: 2, end: 6, query: 'ref' });
  assert.equal(slashAt('and/or', 6), null);
  assert.equal(slashAt('http://x', 8), null);
  assert.equal(slashAt('/Thanks', 7), null);
  assert.equal(slashAt('/thanks now', 11), null);
});

test('matching and replacing', () => {
  const items = [{ shortcut: 'hours', title: 'Opening hours' }, { shortcut: 'thanks', title: 'Thank you' },
    { shortcut: 'say-thanks', title: 'x' }, { shortcut: 'refund', title: 'Refund policy (thanks)' }];
  assert.deepEqual(match(items, 'tha').map((i) => i.shortcut), ['thanks', 'say-thanks', 'refund']);
  assert.deepEqual(match(items, 'HOURS').map((i) => i.shortcut), ['hours']);
  assert.equal(match(items, '').length, 4);
  assert.equal(match(items, '', 2).length, 2);
  assert.deepEqual(replaceSpan('Hi /tha!', { start: 3, end: 7 }, 'Thanks'), { text: 'Hi Thanks!', caret: 9 });
});
