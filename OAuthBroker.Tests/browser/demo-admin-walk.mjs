// The demo's admin page: with Admin:GitHubLogins naming octocat-demo, /admin signs in through the stand-in GitHub
// (clicking "Authorize") and opens on the overview, where the demo's own instance is listed. Prints one JSON line
// (see chromium.mjs).
import { walk } from './chromium.mjs';

const brokerUrl = process.env.BROKER_URL;
if (!brokerUrl) throw new Error('Set BROKER_URL');

await walk(async (page) => {
  await page.goto(`${brokerUrl}/admin`);
  await page.waitForSelector('button:has-text("Authorize")', { timeout: 15000 });
  await page.click('button:has-text("Authorize")');
  await page.waitForSelector('#continue', { timeout: 15000 });
  await page.click('#continue');
  await page.waitForSelector('#overview', { timeout: 15000 });
  const instances = await page.$$eval('#overview tbody tr td:first-child', (cells) => cells.map((cell) => cell.textContent));
  return { instances, signedInAs: await page.textContent('p strong') };
});
