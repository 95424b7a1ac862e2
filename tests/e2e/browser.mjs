// SPDX-License-Identifier: MIT
// Shared by the browser tests: headless Debian Chromium, and a visitor chatting through
// the demo page's widget.
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      // Pages fulfilled by page.route() count as public: let them reach loopback.
      '--disable-features=LocalNetworkAccessChecks',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// A visitor on a phone-sized page: opens the demo page's widget, sends text, waits until
// it is acknowledged. Returns the page and the conversation id.
export async function visitorSays(browser, url, text) {
  const context = await browser.newContext({ viewport: { width: 390, height: 780 } });
  const page = await context.newPage();
  await page.goto(`${url}/`);
  await page.click('[data-sb="launcher"]');
  await page.fill('[data-sb="input"]', text);
  await page.click('[data-sb="send"]');
  await page.waitForFunction(() => {
    const s = window.Switchboard && window.Switchboard._state;
    return s && s.conv && s.pending.length === 0;
  });
  return { context, page, conv: await page.evaluate(() => window.Switchboard._state.conv) };
}
