// The install relay, the organisation-access page and RP-initiated logout in Chromium, each ending at an instance on
// its own origin (a loopback server here, on INSTANCE_PORT, that records what reaches it). Prints one JSON line (see
// chromium.mjs) with what the instance received at each step.
import { createServer } from 'node:http';
import { walk } from './chromium.mjs';

const brokerUrl = process.env.BROKER_URL;
const instancePort = Number(process.env.INSTANCE_PORT);
const clientId = process.env.CLIENT_ID;
if (!brokerUrl || !instancePort || !clientId) throw new Error('Set BROKER_URL, INSTANCE_PORT and CLIENT_ID');

const instance = `http://127.0.0.1:${instancePort}`;
const received = [];
const server = createServer((request, response) => {
  const url = new URL(request.url, instance);
  if (url.pathname !== '/favicon.ico') received.push({ path: url.pathname, query: Object.fromEntries(url.searchParams) });
  response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  response.end(`<!doctype html><title>instance</title><p id="arrived">instance got ${url.pathname}</p>`);
});
await new Promise((resolve) => server.listen(instancePort, '127.0.0.1', resolve));
const callback = `${instance}/browser/callback`;
const arrived = { timeout: 15000 };

try {
  await walk(async (page) => {
    // The install relay: GitHub's installation page (the fake installs at once), the broker, the instance.
    await page.goto(`${brokerUrl}/auth/github/install?redirect_uri=${encodeURIComponent(callback)}&state=install-walk`);
    await page.waitForSelector('#arrived', arrived);
    const install = received.at(-1);

    // The organisation-access page: its "Continue" leads back to the allowed instance only.
    await page.goto(`${brokerUrl}/auth/github/org-access?redirect_uri=${encodeURIComponent(callback)}`);
    const gitHubLink = await page.getAttribute('#github', 'href');
    await page.click('#continue');
    await page.waitForSelector('#arrived', arrived);
    const orgAccess = received.at(-1);

    // RP-initiated logout to a registered URI.
    await page.goto(`${brokerUrl}/oauth/logout?client_id=${encodeURIComponent(clientId)}&post_logout_redirect_uri=${encodeURIComponent(`${instance}/signed-out`)}&state=logout-walk`);
    await page.waitForSelector('#arrived', arrived);
    const logout = received.at(-1);

    return { install, gitHubLink, orgAccess, logout };
  });
} finally {
  server.close();
}
