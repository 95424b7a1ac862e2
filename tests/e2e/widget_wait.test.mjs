// SPDX-License-Identifier: MIT
// The widget's honest wait in headless Chromium against the real daemon (docs/sla.md
// "Honest wait"), read from its [data-sb=expected] hook: with nobody online it says so
// and offers the email field instead of a number; with a staff feed open it gives the
// number; outside the calendar's hours (the daemon's clock at a Saturday 03:00 in the
// calendar's zone, the browser's zone and clock pinned) it says when the team is back,
// in the visitor's own time zone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, visitorSays } from './browser.mjs';
import { Daemon, api } from './lib.mjs';
import { StaffFeed, nextLocal } from './wait_lib.mjs';

const ZONE = 'Europe/Berlin';
const NOBODY = 'Nobody is online right now \u2014 leave your email and we\'ll answer there';
let d;
let cal;
let browser;
let sat;
let mon;

before(async () => {
  d = await Daemon.start();
  cal = await Daemon.start(`calendar office ${ZONE} mon-fri 09:00-17:00\n` +
    'sla quick channel=* priority=* first=2m next=5m resolve=1d calendar=office',
  { testClock: true });
  sat = nextLocal(Date.now() + 7 * 864e5, ZONE, 'Sat', 3);
  mon = nextLocal(sat, ZONE, 'Mon', 9);
  cal.setClockOffset(sat - Date.now());
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
  for (const x of [d, cal]) if (x) await x.stop();
});

const sb = (sel) => `[data-sb="${sel}"]`;

// The demo page's widget, opened, in a browser pinned to zone (and to `now`, if given).
async function widget(daemon, { zone = ZONE, now } = {}) {
  const context = await browser.newContext({ timezoneId: zone, locale: 'en-GB' });
  const page = await context.newPage();
  if (now !== undefined) await page.clock.setFixedTime(now);
  await page.goto(`${daemon.url}/`);
  await page.click(sb('launcher'));
  await page.waitForFunction(() => window.Switchboard._state.welcomed);
  return { context, page };
}

const expectedNow = (page) => page.evaluate(() => document.querySelector('[data-switchboard]')
  .shadowRoot.querySelector('[data-sb="expected"]').textContent);

// Waits until [data-sb=expected] says text; a timeout says what it said instead.
async function expectedText(page, text) {
  try {
    await page.waitForFunction((t) => document.querySelector('[data-switchboard]').shadowRoot
      .querySelector('[data-sb="expected"]').textContent === t, text, { timeout: 15000 });
  } catch (e) {
    assert.equal(await expectedNow(page), text, e.message);
  }
}

test('nobody online: no number, and the email field is offered', async () => {
  const { context, page } = await widget(d);
  await expectedText(page, NOBODY);
  assert.ok(await page.locator(sb('email')).isVisible(), 'the email field is shown');
  await context.close();
});

test('a staff feed open during hours: the usual reply time', async () => {
  const admin = d.token('admin', 'Ada Admin');
  // A first response on the web chat, for the estimate to be made of.
  const first = await visitorSays(browser, d.url, 'hello?');
  const r = await api(d, 'POST', `/v1/conversations/${first.conv}/messages`,
    { token: admin, body: { text: 'Hi!' } });
  assert.equal(r.status, 201, r.text);
  await first.context.close();

  const { context, page } = await widget(d);
  await expectedText(page, NOBODY);
  const feed = await StaffFeed.online(d, d.token('agent', 'Wanda Wait'));
  await expectedText(page, 'We usually reply in about a minute');
  await feed.close();
  await expectedText(page, NOBODY);
  await context.close();
});

test('outside hours: when the team is back, in the visitor\'s time zone', async () => {
  // Saturday 03:00 in Berlin for the daemon and the browser.
  let w = await widget(cal, { now: sat });
  await expectedText(w.page, 'We\'re back Monday at 9:00');
  assert.ok(await w.page.locator(sb('email')).isVisible(), 'the email field is shown');
  await w.context.close();

  // The same opening seen from New York: Monday 03:00 there (04:00 in the weeks the
  // two sides of the Atlantic change to and from summer time on different dates).
  const ny = new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', hour: 'numeric',
    hourCycle: 'h23' }).format(mon);
  w = await widget(cal, { zone: 'America/New_York', now: sat });
  await expectedText(w.page, `We're back Monday at ${Number(ny)}:00`);
  await w.context.close();

  // A visitor whose clock says Sunday noon: tomorrow.
  w = await widget(cal, { now: mon - 21 * 3600000 });
  await expectedText(w.page, 'We\'re back tomorrow at 9:00');
  await w.context.close();

  // Monday 06:00 in the browser: today.
  w = await widget(cal, { now: mon - 3 * 3600000 });
  await expectedText(w.page, 'We\'re back today at 9:00');
  await w.context.close();
});
