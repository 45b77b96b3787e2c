// /account in Chromium, with GitHub on another origin: sign in, "Disconnect from all" for each of the broker's apps,
// then sign out. Prints one JSON line (see chromium.mjs).
import { walk } from './chromium.mjs';

const brokerUrl = process.env.BROKER_URL;
if (!brokerUrl) throw new Error('Set BROKER_URL');
const wait = { timeout: 15000 };

await walk(async (page) => {
  await page.goto(`${brokerUrl}/account`);
  await page.click('#sign-in');
  await page.waitForSelector('#account-login', wait);
  const signedInAs = await page.textContent('#account-login');
  const apps = await page.$$eval('button[id^="disconnect-"]', (buttons) => buttons.map((button) => button.id));
  const disconnected = [];
  for (const app of apps) {
    await page.goto(`${brokerUrl}/account`);
    await page.click(`#${app}`);
    await page.waitForSelector('#disconnected', wait);
    disconnected.push({ app, url: page.url(), text: await page.textContent('#disconnected') });
  }

  await page.goto(`${brokerUrl}/account`);
  await page.click('#sign-out');
  await page.waitForSelector('#sign-in', wait);
  return { signedInAs, apps, disconnected, signedOut: new URL(page.url()).pathname };
});
