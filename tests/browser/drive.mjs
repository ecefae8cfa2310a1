// Drives the collector's tracking tag in headless Chromium and prints what
// the pages saw as one JSON object; tests/browser.rs checks it against the
// records the collector wrote.
//
//   node drive.mjs http://127.0.0.1:<collector port>
//
// Pages other than the collector's own test page come from a small static
// server started here on another loopback port (cookies are per host, so
// both origins share them, as a site and its collector on one domain do).
import http from 'node:http';
import { chromium } from 'playwright-core';

const collector = process.argv[2];
if (!collector) {
  console.error('usage: node drive.mjs <collector base url>');
  process.exit(2);
}

const pages = {
  '/plain.html': `<!DOCTYPE html><html><head><meta charset="utf-8"><title>plain</title>
    <script>addEventListener('pageshow', function (e) { window.restoredFromCache = e.persisted; });</script>
    <script src="${collector}/divolte.js"></script></head><body><a id="next" href="/other.html">next</a></body></html>`,
  '/other.html': `<!DOCTYPE html><html><head><meta charset="utf-8"><title>other</title>
    <script src="${collector}/divolte.js"></script></head><body>other</body></html>`,
  '/server-id.html': `<!DOCTYPE html><html><head><meta charset="utf-8"><title>server id</title>
    <script src="${collector}/divolte.js#supercalifragilisticexpialidocious"></script></head><body>s</body></html>`,
  '/leave.html': `<!DOCTYPE html><html><head><meta charset="utf-8"><title>leave</title>
    <script src="${collector}/beacon/divolte.js"></script>
    <script>addEventListener('pagehide', function () { divolte.signal('leaving', { why: 'navigated' }); });</script>
    </head><body>leave</body></html>`,
  '/short.html': `<!DOCTYPE html><html><head><meta charset="utf-8"><title>short session</title>
    <script src="${collector}/short/divolte.js"></script></head><body>short</body></html>`,
};

const site = http.createServer((req, res) => {
  const page = pages[req.url.split('?')[0]];
  res.writeHead(page ? 200 : 404, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(page || 'not found');
});
await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
const siteUrl = `http://127.0.0.1:${site.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // Playwright turns the back/forward cache off by default; the tag's restore handling needs it.
  ignoreDefaultArgs: ['--disable-back-forward-cache'],
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-quic'],
});
const context = await browser.newContext();
const out = {};

// The tag's state, once the page view started.
async function state(page) {
  await page.waitForFunction(() => window.divolte && window.divolte.pageViewId);
  return page.evaluate(() => ({
    party: divolte.partyId,
    session: divolte.sessionId,
    pageView: divolte.pageViewId,
    newParty: divolte.isNewPartyId,
    firstInSession: divolte.isFirstInSession,
    serverPageView: divolte.isServerPageView,
  }));
}

// Resolves when every event so far was delivered.
function committed(page) {
  return page.evaluate(() => new Promise((resolve) => divolte.whenCommitted(() => resolve(true), 5000)));
}

try {
  // 1. The collector's own test page, its button, a custom event with nested parameters.
  const page = await context.newPage();
  await page.goto(`${collector}/`);
  out.first = await state(page);
  await page.click('#signal');
  out.custom = await page.evaluate(() => divolte.signal('checkout', {
    order: { id: 'A-17', lines: [{ sku: 'x!~y', qty: 2, price: 19.95 }, { sku: 'ünï', qty: -3, price: 1e21 }] },
    tags: ['a', 'b'], gift: false, note: null,
  }));
  out.emoji = await page.evaluate(() => divolte.signal('launch 🚀', { text: '😀 smile' }));
  out.firstCommitted = await committed(page);

  // 2. Cookies: a second page on the site keeps party and session, new page view.
  await page.goto(`${siteUrl}/plain.html`);
  out.second = await state(page);
  await committed(page);
  await page.click('#next');
  await page.waitForURL('**/other.html');
  out.third = await state(page);
  await committed(page);

  // 3. Back to plain.html from the back/forward cache: a new page view.
  await page.goBack({ waitUntil: 'commit' });
  await page.waitForFunction((previous) => window.divolte && divolte.pageViewId !== previous, out.second.pageView,
    { timeout: 5000 }).catch(() => {});
  out.restored = await state(page);
  out.restoredFromCache = await page.evaluate(() => window.restoredFromCache === true);
  await committed(page);

  // 4. A page-view id supplied by the server in the script URL.
  await page.goto(`${siteUrl}/server-id.html`);
  out.serverId = await state(page);
  await committed(page);

  // 4b. A source that sends with sendBeacon while the page unloads.
  await page.goto(`${siteUrl}/leave.html`);
  await state(page);
  await committed(page);
  await page.goto(`${siteUrl}/other.html`);
  await state(page);
  await committed(page);

  // 4c. A page loaded hidden (prerendered, background tab) starts its page
  // view only when shown. Headless pages are always visible, so the page's
  // visibility is simulated before any script runs.
  const hidden = await context.newPage();
  await hidden.addInitScript(() => {
    let visibility = 'hidden';
    Object.defineProperty(Document.prototype, 'visibilityState', { get: () => visibility, configurable: true });
    window.showPage = () => {
      visibility = 'visible';
      document.dispatchEvent(new Event('visibilitychange'));
    };
  });
  await hidden.goto(`${siteUrl}/other.html`);
  await hidden.waitForFunction(() => window.divolte);
  await hidden.waitForTimeout(300);
  out.hiddenBefore = await hidden.evaluate(() => divolte.pageViewId);
  await hidden.evaluate(() => window.showPage());
  out.hiddenAfter = await state(hidden);
  await committed(hidden);
  await hidden.close();

  // 5. A source whose session lasts two seconds: after three, a new session.
  await page.goto(`${siteUrl}/short.html`);
  out.shortBefore = await state(page);
  await committed(page);
  await page.waitForTimeout(3000);
  await page.reload();
  out.shortAfter = await state(page);
  await committed(page);

  // 6. Loading the tag twice keeps the first instance.
  out.doubleLoad = await page.evaluate(async (src) => {
    const before = divolte.pageViewId;
    await new Promise((resolve) => {
      const s = document.createElement('script');
      s.src = src;
      s.onload = resolve;
      document.head.appendChild(s);
    });
    return divolte.pageViewId === before;
  }, `${collector}/short/divolte.js?again`);

  // 7. The tag's wire encoders on tricky values, for the collector's decoders.
  out.wire = await page.evaluate(() => {
    const values = [0, 1, -1, 35, 36, -123456789, 2 ** 53, 1e21, 0.1, -2.5e-7, 'plain', '', 'x!~y~!', 'ünïcødé ⚕ 😀',
      true, false, null, [], {}, [1, [2, [3, ['deep']]]], { 'we!rd~key': { nested: [null, true, 'a'] } },
      { date: new Date(Date.UTC(2012, 11, 21, 1, 2, 3, 4)) }];
    return values.map((v) => ({ json: JSON.stringify(v), mincode: divolte._wire.mincode(v) }));
  });
  out.checksums = await page.evaluate(() => {
    const tables = [
      [['p', '0:i1t84hgy:party'], ['s', '0:i1t84hgy:session'], ['t', 'ụñ⚕©ºḌℨ']],
      [['t', 'emoji 😀 🚀'], ['u', '(stext!~!~~!)'], ['l', 'http://x/?a=1&b=2#f']],
      [['b', '2'], ['a', '1'], ['b', '3']],
    ];
    return tables.map((params) => ({ params, x: divolte._wire.checksum(params) }));
  });

  out.cookies = (await context.cookies()).map((c) => ({ name: c.name, sameSite: c.sameSite, expires: c.expires }));
} finally {
  await browser.close();
  site.close();
}
console.log(JSON.stringify(out));
