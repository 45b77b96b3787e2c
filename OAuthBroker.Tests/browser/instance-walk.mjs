// Signs in through the example instance (examples/node-instance) in Chromium: its /login, the broker, the fake
// GitHub (which approves at once), the broker's callback, then the instance's callback in whichever response mode it
// asked for. Prints one JSON line: what the instance answered, and every URL the browser requested.
import { launchChromium } from './chromium.mjs';

const instanceUrl = process.env.INSTANCE_URL;
if (!instanceUrl) throw new Error('Set INSTANCE_URL');

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  const requested = [];
  page.on('request', (request) => requested.push(`${request.method()} ${request.url()}`));
  await page.goto(`${instanceUrl}/login`);
  await page.waitForFunction(() => document.body?.innerText.trim().startsWith('{'), null, { timeout: 30000 });
  const result = JSON.parse(await page.evaluate(() => document.body.innerText));
  console.log(JSON.stringify({ finalUrl: page.url(), result, requested }));
} finally {
  await browser.close();
}
