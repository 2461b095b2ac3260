// The hosted checkout page in headless Chromium, as a buyer on a phone meets it: the whole
// stack (devstack) behind the gateway, a shop on another origin, and an attacker's page.
//
//   node checkout.test.mjs <devstack binary> <chromium binary>
//
// Checks: no horizontal overflow at 375 px with a long item name and a seven-digit total;
// amounts with thousands separators; the page's style applies under its CSP; no console error
// (the favicon included); another site cannot frame the page, nor press Pay with its own
// form; the page's own Pay button reaches the shop's success page with the payment id. And
// the API docs at /docs render from the gateway alone, asking nothing of any other host.

import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { chromium } from 'playwright-core';

const [devstackBin, chromiumBin] = process.argv.slice(2);
if (!devstackBin || !chromiumBin) {
  console.error('usage: node checkout.test.mjs <devstack binary> <chromium binary>');
  process.exit(2);
}

let failures = 0;
function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures += 1;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

// The shop (success and cancel pages) and the attacker, each on an origin of its own.
function site(handler) {
  return new Promise((resolve) => {
    const server = http.createServer(handler);
    server.listen(0, '127.0.0.1', () => resolve({ server, origin: `http://127.0.0.1:${server.address().port}` }));
  });
}

async function startStack() {
  const [gatewayPort, msPort] = [await freePort(), await freePort()];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'browser-test-'));
  const gateway = `http://127.0.0.1:${gatewayPort}`;
  const child = spawn(devstackBin, [], {
    env: {
      ...process.env,
      GATEWAY_ADDR: `127.0.0.1:${gatewayPort}`,
      PAYMENT_MS_ADDR: `127.0.0.1:${msPort}`,
      // The buyer's browser reaches the hosted page through the gateway, as in production.
      PUBLIC_BASE_URL: gateway,
      DATABASE_URL: `sqlite://${dir}/payments.db?mode=rwc`,
      RUST_LOG: 'warn',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const tokens = {};
  let output = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`devstack did not start:\n${output}`)), 60_000);
    child.stdout.on('data', (chunk) => {
      output += chunk;
      for (const [, name, value] of output.matchAll(/export (\w+)=(\S+)/g)) tokens[name] = value;
      if (tokens.ADMIN_TOKEN) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`devstack exited with ${code}:\n${output}`)));
  });
  return { child, gateway, tokens, dir };
}

async function api(stack, method, path, token, body) {
  const response = await fetch(`${stack.gateway}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  const json = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

const stack = await startStack();
const shop = await site((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end(`<!doctype html><title>Shop</title><link rel="icon" href="data:,"><h1>Thank you</h1>`);
});
let checkoutUrl = '';
const attacker = await site((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' });
  if (req.url === '/frame') {
    res.end(`<!doctype html><title>Evil</title><link rel="icon" href="data:,">
      <iframe id="victim" src="${checkoutUrl}" width="400" height="600"></iframe>`);
  } else {
    res.end(`<!doctype html><title>Evil</title><link rel="icon" href="data:,">
      <form id="f" method="post" action="${checkoutUrl}"><input name="action" value="pay"></form>
      <script>document.getElementById('f').submit()</script>`);
  }
});

const browser = await chromium.launch({
  executablePath: chromiumBin,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const longName = `Limited edition ${'extra-long-'.repeat(12)}hoodie with a name nobody reads`;
  const order = await api(stack, 'POST', '/api/v1/orders', stack.tokens.SERVICE_TOKEN, {
    user_id: 'user_demo',
    currency: 'usd',
    items: [
      { sku: 'hoodie-limited-edition-sku', name: longName, quantity: 1, unit_price: 123456789 },
      { sku: 'pin', name: 'Pin', quantity: 3, unit_price: 250 },
    ],
  });
  const payment = await api(stack, 'POST', `/api/v1/orders/${order.id}/checkout`, stack.tokens.USER_TOKEN, {
    success_url: `${shop.origin}/paid`,
    cancel_url: `${shop.origin}/cart`,
  });
  checkoutUrl = payment.checkout_url;
  check(checkoutUrl.startsWith(stack.gateway), `the checkout is served through the gateway (${checkoutUrl})`);

  // 1. The buyer on a 375 px phone.
  const phone = await browser.newContext({ viewport: { width: 375, height: 812 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const page = await phone.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`${r.status()} for ${r.url()}`); });
  const loaded = await page.goto(checkoutUrl, { waitUntil: 'load' });
  check(loaded.status() === 200, 'the page loads');
  const headers = loaded.headers();
  check((headers['content-security-policy'] || '').includes("frame-ancestors 'none'"), 'it carries its CSP through the gateway');
  check(headers['x-frame-options'] === 'DENY', 'and X-Frame-Options: DENY');
  // The favicon is fetched by the browser on its own; give it a moment.
  const icon = await page.request.get(new URL('/favicon.ico', checkoutUrl).href);
  check(icon.status() === 200, '/favicon.ico answers 200');
  const layout = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
    text: document.body.innerText,
    button: getComputedStyle(document.querySelector('button')).backgroundColor,
  }));
  check(layout.scrollWidth <= layout.clientWidth, `no horizontal overflow at 375 px (content ${layout.scrollWidth} px wide, viewport ${layout.clientWidth} px)`);
  check(layout.text.includes('1,234,575.39 USD'), 'the total has thousands separators');
  check(layout.text.includes('3 × 2.50 USD'), 'each line says quantity and unit price');
  check(layout.button === 'rgb(31, 136, 61)', `the page's own style applies under its CSP (${layout.button})`);
  await page.screenshot({ path: path.join(stack.dir, 'checkout-375.png'), fullPage: true });

  // 2. Another site frames the page: the browser refuses.
  const evil = await browser.newContext();
  const framing = await evil.newPage();
  await framing.goto(`${attacker.origin}/frame`, { waitUntil: 'load' });
  await framing.waitForTimeout(500);
  const frame = framing.frames().find((f) => f !== framing.mainFrame());
  const framed = frame ? await frame.evaluate(() => document.body && document.body.innerText).catch(() => '') : '';
  check(!framed.includes('Amount due'), 'another site cannot show the page in a frame');

  // 3. Another site posts the form: refused, nothing paid.
  const forging = await evil.newPage();
  const forged = forging.waitForResponse((r) => r.url() === checkoutUrl && r.request().method() === 'POST');
  await forging.goto(`${attacker.origin}/forge`);
  check((await forged).status() === 403, 'a form from another site is refused (403)');
  const afterForgery = await api(stack, 'POST', `/api/v1/payments/${payment.id}/verify`, stack.tokens.USER_TOKEN, {});
  check(afterForgery.status === 'pending', 'and the payment is still pending');

  // 4. The buyer presses Pay on the page itself: back to the shop with the payment id.
  await Promise.all([page.waitForURL(`${shop.origin}/paid?**`), page.click('button[value=pay]')]);
  check(new URL(page.url()).searchParams.get('payment_id') === payment.id, `Pay leads to the shop's success page (${page.url()})`);
  const paid = await api(stack, 'POST', `/api/v1/payments/${payment.id}/verify`, stack.tokens.USER_TOKEN, {});
  check(paid.status === 'succeeded', 'and the payment succeeded');
  check(problems.length === 0, `no console error, failed or refused request on the buyer's page${problems.length ? ':\n  ' + problems.join('\n  ') : ''}`);

  // 5. The API docs, offline: every file the viewer loads comes from the gateway.
  const reader = await browser.newContext();
  const docs = await reader.newPage();
  const elsewhere = [];
  const docProblems = [];
  docs.on('request', (r) => { if (!r.url().startsWith(stack.gateway)) elsewhere.push(r.url()); });
  docs.on('pageerror', (e) => docProblems.push(e.message));
  docs.on('console', (m) => { if (m.type() === 'error') docProblems.push(m.text()); });
  await docs.goto(`${stack.gateway}/docs`, { waitUntil: 'load' });
  const title = await docs.waitForSelector('.swagger-ui .info .title', { timeout: 15_000 }).then((e) => e.innerText()).catch(() => '');
  check(title.includes('Payment stack'), `/docs renders the API document (${title.split('\n')[0]})`);
  const operations = await docs.locator('.opblock').count();
  check(operations >= 20, `and its operations (${operations})`);
  check(elsewhere.length === 0, `loading nothing from elsewhere${elsewhere.length ? ': ' + elsewhere.join(', ') : ''}`);
  check(docProblems.length === 0, `without console errors${docProblems.length ? ': ' + docProblems.join('; ') : ''}`);
} catch (e) {
  console.error(e);
  failures += 1;
} finally {
  await browser.close();
  stack.child.kill('SIGINT');
  shop.server.close();
  attacker.server.close();
}
console.log(failures ? `${failures} check(s) failed` : 'all checks passed');
process.exit(failures ? 1 : 0);
