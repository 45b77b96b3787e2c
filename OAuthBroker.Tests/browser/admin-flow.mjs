// An admin signs in through the (fake) GitHub, adds an instance on /admin, tests a redirect URI there, and a login
// for the new instance then succeeds. Prints one JSON line with what it saw; exits non-zero on any failure.
import { createServer } from 'node:http';
import { launchChromium } from './chromium.mjs';

const brokerUrl = process.env.BROKER_URL;
const screenshot = process.env.SCREENSHOT;
if (!brokerUrl) throw new Error('Set BROKER_URL');

// The new instance's callback: a loopback server that records what the broker sends.
let received = null;
const instance = createServer((request, response) => {
  const url = new URL(request.url, 'http://127.0.0.1');
  if (url.pathname === '/browser/callback') received = Object.fromEntries(url.searchParams);
  response.writeHead(200, { 'content-type': 'text/plain' });
  response.end('instance got the callback');
});
await new Promise((resolve) => instance.listen(0, '127.0.0.1', resolve));
const callback = `http://127.0.0.1:${instance.address().port}/browser/callback`;

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  const failures = [];
  page.on('console', (message) => message.type() === 'error' && failures.push(message.text()));

  // Not signed in: /admin sends the browser to GitHub and back.
  await page.goto(`${brokerUrl}/admin`);
  await page.waitForSelector('#continue');
  await page.click('#continue');
  await page.waitForSelector('text=Signed in as');

  // Add an instance through the form.
  await page.fill('form[action="/admin/instances"] input[name="id"]', 'browser-made');
  await page.fill('form[action="/admin/instances"] textarea[name="redirectUris"]', 'http://127.0.0.1/browser/callback');
  await page.check('form[action="/admin/instances"] input[name="keyMode"][value="secret"]');
  await page.click('form[action="/admin/instances"] button');
  const secret = JSON.parse(await page.textContent('#secret'));
  await page.click('text=Back to the admin page');
  await page.waitForSelector('a[href="/admin/instances/browser-made"]');

  // Test a redirect URI on the page.
  await page.fill('input[name="check"]', `${callback}`);
  await page.click('form[action="/admin"] button');
  const check = await page.textContent('#check-result');
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });

  // A login for the new instance, from a fresh browser context (a user, not the admin).
  const user = await browser.newContext();
  const userPage = await user.newPage();
  await userPage.goto(`${brokerUrl}/auth/github?redirect_uri=${encodeURIComponent(callback)}&state=from-browser`);
  await userPage.waitForSelector('text=instance got the callback');

  // Edit an instance on its page, then remove another one.
  await page.goto(`${brokerUrl}/admin/instances/login-only`);
  await page.fill('input[name="scopes"]', 'read:user user:email');
  await page.fill('textarea[name="postLogoutRedirectUris"]', 'https://login-only.example.com/signed-out');
  await page.click('form button');
  await page.waitForSelector('a[href="/admin/instances/browser-made"]');
  await page.click('button:has-text("Remove legacy-rsa")');
  await page.waitForSelector('a[href="/admin/instances/browser-made"]');
  const listed = await page.$$eval('table a', (links) => links.map((link) => link.textContent));

  // End the signed-in user's access on the users page (the user who signed in to the new instance above), then
  // sign out: a 303 to a page that does not sign in again.
  await page.goto(`${brokerUrl}/admin/users?login=${encodeURIComponent(process.env.USER_LOGIN ?? 'octo-admin')}`);
  await page.click('#end-access');
  await page.waitForSelector('text=Access ended');
  const accessEnded = await page.textContent('h1');
  await page.goto(`${brokerUrl}/admin`);
  await page.click('button:has-text("Sign out")');
  await page.waitForSelector('#sign-in');
  const signedOut = new URL(page.url()).pathname;
  await page.goto(`${brokerUrl}/admin/users`);
  const afterSignOut = new URL(page.url()).pathname;

  console.log(JSON.stringify({ secretAlg: secret.alg, check, received, listed, accessEnded, signedOut, afterSignOut, consoleErrors: failures }));
} finally {
  await browser.close();
  instance.close();
}
