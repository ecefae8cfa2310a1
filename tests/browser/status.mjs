// Opens the operator page in headless Chromium while the test sends
// traffic, and prints what the page showed as one JSON object;
// tests/operator_page.rs checks it.
//
//   node status.mjs http://127.0.0.1:<admin port>/status <screenshot.png> <events url>
//
// The third argument is a pixel URL on the public port; the page's numbers
// must move while it is requested.
import { chromium } from 'playwright-core';

const [page_url, screenshot, events] = process.argv.slice(2);
if (!events) {
  console.error('usage: node status.mjs <status url> <screenshot path> <event url>');
  process.exit(2);
}

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 1400 } });
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(page_url);
  await page.waitForFunction(() => document.getElementById('version').textContent !== '-');
  const total = async () => Number(await page.locator('#totals tr:first-child td:nth-child(2)').textContent());
  const before = await total();
  // Traffic while the page is open: the collector counts it, the page shows it.
  for (let i = 0; i < 20; i++) await fetch(`${events}&l=http%3A%2F%2Ft%2F${i}`);
  await page.waitForFunction((b) => Number(document.querySelector('#totals tr:first-child td:nth-child(2)').textContent) >= b + 20, before, { timeout: 15000 });
  const after = await total();
  // Rates need two samples; wait for the chart to draw its lines.
  await page.waitForSelector('#chart polyline', { timeout: 20000 });
  await page.waitForFunction(() => document.querySelector('#recent pre') && !document.querySelector('#recent pre').textContent.startsWith('(none'), null, { timeout: 15000 });
  const schemaLink = await page.locator('#mappings a').first().getAttribute('href');
  const schemaText = await (await page.request.get(new URL(schemaLink, page_url).href)).text();
  await page.screenshot({ path: screenshot, fullPage: true });
  const text = await page.locator('body').innerText();
  const foreign = requests.filter((u) => !u.startsWith(new URL(page_url).origin));
  console.log(JSON.stringify({
    errors, before, after, text, foreign, schemaLink, schemaText,
    phase: await page.locator('#phase').textContent(),
    source: await page.locator('#sources tr:first-child td:first-child').textContent(),
    sourceEvents: Number(await page.locator('#sources tr:first-child td:nth-child(2)').textContent()),
    legend: await page.locator('#legend').innerText(),
    lines: await page.locator('#chart polyline').count(),
  }));
} finally {
  await browser.close();
}
