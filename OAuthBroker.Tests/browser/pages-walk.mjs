// Opens each of PAGES (a JSON array of URLs) in Chromium and records its status and heading: the refusal pages a
// person meets must render under the broker's CSP without a console error. Prints one JSON line (see chromium.mjs).
import { walk } from './chromium.mjs';

const pages = JSON.parse(process.env.PAGES ?? '[]');

await walk(async (page) => {
  const seen = [];
  for (const url of pages) {
    const response = await page.goto(url);
    seen.push({ url, status: response.status(), heading: await page.textContent('h1') });
  }
  return { seen };
});
