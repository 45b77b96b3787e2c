// An admin signs in through the (fake) GitHub and reads the overview on /admin: the bars of each instance's charts,
// the refusals by reason and the outbox figures, then keeps a screenshot. Prints one JSON line (see chromium.mjs).
import { walk } from './chromium.mjs';

const brokerUrl = process.env.BROKER_URL;
const screenshot = process.env.SCREENSHOT;
if (!brokerUrl) throw new Error('Set BROKER_URL');

await walk(async (page) => {
  await page.setViewportSize({ width: 1100, height: 900 });
  await page.goto(`${brokerUrl}/admin`);
  await page.click('#continue');
  await page.waitForSelector('#overview', { timeout: 15000 });
  const charts = await page.$$eval('svg.chart', (svgs) => svgs.map((svg) => ({
    id: svg.id,
    counts: [...svg.querySelectorAll('rect')].map((rect) => Number(rect.dataset.count)),
    width: svg.getBoundingClientRect().width,
  })));
  const refusals = await page.$$eval('#refusals tbody tr', (rows) => rows.map((row) => [...row.querySelectorAll('td')].map((cell) => cell.textContent)));
  const instances = await page.$$eval('#overview tbody tr td:first-child', (cells) => cells.map((cell) => cell.textContent));
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  return { charts, refusals, instances, pending: await page.textContent('#outbox-pending'), dead: await page.textContent('#outbox-dead') };
});
