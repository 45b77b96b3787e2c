// Signs in through an instance in Chromium: its /login, the broker, GitHub (the test fake approves at once; on the
// demo's stand-in the walk clicks "Authorize"), the broker's callback, then the instance's callback in whichever
// response mode it asked for. Prints one JSON line (see chromium.mjs): what the instance answered, and every URL the
// browser requested.
import { walk } from './chromium.mjs';

const instanceUrl = process.env.INSTANCE_URL;
if (!instanceUrl) throw new Error('Set INSTANCE_URL');

await walk(async (page) => {
  const requested = [];
  page.on('request', (request) => requested.push(`${request.method()} ${request.url()}`));
  const arrived = () => document.body?.innerText.trim().startsWith('{');
  await page.goto(`${instanceUrl}/login`);
  await page.waitForFunction(() => document.body?.innerText.trim().startsWith('{') || !!document.querySelector('button[value="approve"]'), null, { timeout: 30000 });
  const consent = await page.$('button[value="approve"]');
  if (consent) await consent.click();
  await page.waitForFunction(arrived, null, { timeout: 30000 });
  const result = JSON.parse(await page.evaluate(() => document.body.innerText));
  return { result, requested, consentClicked: consent !== null };
});
