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
