// Walks the demo as the README tells a newcomer to: open the broker's root, click "Sign in with GitHub (demo)",
// "Authorize" on the stand-in consent page, and read what the demo instance shows. Prints one JSON line with what
// it saw; exits non-zero on any failure.
import { launchChromium } from './chromium.mjs';

const brokerUrl = process.env.BROKER_URL;
const screenshot = process.env.SCREENSHOT;
if (!brokerUrl) throw new Error('Set BROKER_URL');

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  const consoleErrors = [];
  page.on('console', (message) => message.type() === 'error' && consoleErrors.push(message.text()));

  await page.goto(new URL('/', brokerUrl).toString());
  const instancePage = page.url();
  await page.click('text=Sign in with GitHub (demo)');
  await page.waitForSelector('button:has-text("Authorize")');
  const consentPage = new URL(page.url()).pathname;
  if (process.env.DECISION === 'cancel') {
    // Cancelling at the stand-in GitHub: the instance says so and offers to start again.
    await page.click('button:has-text("Cancel")');
    await page.waitForSelector('#refused');
    const refused = await page.textContent('#refused');
    await page.click('#start-again');
    await page.waitForSelector('text=Sign in with GitHub (demo)');
    console.log(JSON.stringify({ instancePage, consentPage, title: 'cancelled', claims: {}, accessToken: '', userCall: refused, userJson: {}, consoleErrors }));
    process.exit(0);
  }

  await page.click('button:has-text("Authorize")');
  await page.waitForSelector('text=Signed in as');

  const title = await page.textContent('h1');
  const claims = Object.fromEntries(await page.$$eval('table tr', (rows) => rows.map((row) => [row.querySelector('th').textContent, row.querySelector('td').textContent])));
  const accessToken = await page.textContent('#access-token');
  const userCall = await page.textContent('h2:has-text("/user")');
  const userJson = JSON.parse(await page.textContent('pre'));
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });

  console.log(JSON.stringify({ instancePage, consentPage, title, claims, accessToken, userCall, userJson, consoleErrors }));
} finally {
  await browser.close();
}
