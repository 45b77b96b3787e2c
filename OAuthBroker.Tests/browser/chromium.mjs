// Debian's Chromium, headless, as this machine allows it: root needs --no-sandbox, and the closed network refuses
// Chromium's own background connections, so they are switched off. Shared by the browser scripts.
import { chromium } from 'playwright-core';

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// Collects what a walk must not meet: console errors (Chromium reports a CSP violation, such as a form whose redirect
// chain leaves form-action, as one) and uncaught page errors. The list fills as the page runs.
// Not counted: "Failed to load resource" for a page itself (a refusal page's 400 is its answer; the walk asserts the
// status) and for /favicon.ico, which the browser asks for on its own.
export function watchForProblems(page) {
  const problems = [];
  page.on('console', (message) => {
    if (message.type() !== 'error' && !/Content Security Policy/i.test(message.text())) return;
    const where = message.location()?.url ?? '';
    if (/^Failed to load resource/.test(message.text()) && (where === page.url() || new URL(where, 'http://x').pathname === '/favicon.ico')) return;
    problems.push(where ? `${message.text()} (${where})` : message.text());
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  return problems;
}

// Runs a walk and prints one JSON line: what it returned plus the problems seen, or the failure and where the page
// was (a blocked form leaves the browser where it was, so a wait times out: the problems say why).
export async function walk(steps) {
  const browser = await launchChromium();
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = watchForProblems(page);
  try {
    const result = await steps(page, { browser, context });
    console.log(JSON.stringify({ ...result, finalUrl: page.url(), problems }));
  } catch (error) {
    console.log(JSON.stringify({ failed: String(error?.message ?? error).split('\n')[0], finalUrl: page.url(), problems }));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}
