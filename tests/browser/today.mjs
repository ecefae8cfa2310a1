// Drives what today's browsers need from the tag and the collector, in
// headless Chromium, and prints what the pages saw as one JSON object;
// tests/browser.rs checks it against the records and metrics.
//
//   node today.mjs http://127.0.0.1:<collector port> <site port>
//
// The site's pages come from a small server here on the site port (the
// collector's configuration allows that origin for CORS). Both are on
// 127.0.0.1, so they share cookies as a site and its collector on one
// domain do.
import http from 'node:http';
import { chromium } from 'playwright-core';

const [collector, sitePort] = process.argv.slice(2);
if (!collector || !sitePort) {
  console.error('usage: node today.mjs <collector base url> <site port>');
  process.exit(2);
}
const CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36';
const HEADLESS = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36';

const page = (title, src, extra = '') => `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title>
  <script src="${collector}${src}"></script>${extra}</head><body>${title}</body></html>`;
const pages = {
  '/srv.html': page('server cookies', '/srv/divolte.js'),
  '/srv2.html': page('server cookies again', '/srv/divolte.js'),
  '/leave.html': page('leave', '/leave/divolte.js', `<script>
    addEventListener('pagehide', function () {
      divolte.signal('bye1');
      divolte.signal('bye2', { n: 2 });
      divolte.whenCommitted(function () { sessionStorage.setItem('committedAtLeave', 'yes'); });
    });
    </script>`),
  '/gpc.html': page('gpc', '/gpc/divolte.js'),
  '/consent.html': page('consent', '/consent/divolte.js'),
  '/blank.html': '<!DOCTYPE html><html><head><title>blank</title></head><body>blank</body></html>',
};
const site = http.createServer((req, res) => {
  const body = pages[req.url.split('?')[0]];
  res.writeHead(body ? 200 : 404, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(body || 'not found');
});
await new Promise((resolve) => site.listen(Number(sitePort), '127.0.0.1', resolve));
const siteUrl = `http://127.0.0.1:${sitePort}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-quic'],
});
const out = {};

// Pixel and batch requests a page makes to the collector, by path.
function watch(p) {
  const seen = [];
  p.on('request', (r) => {
    const path = new URL(r.url()).pathname;
    if (path.endsWith('/csc-event') || path.endsWith('/csc-batch')) {
      seen.push(path);
    }
  });
  return seen;
}

async function ids(p) {
  await p.waitForFunction(() => window.divolte && window.divolte.pageViewId);
  return p.evaluate(() => ({ party: divolte.partyId, session: divolte.sessionId, pageView: divolte.pageViewId }));
}

function committed(p) {
  return p.evaluate(() => new Promise((resolve) => divolte.whenCommitted(() => resolve(true), 5000)));
}

try {
  // 1. Cookies set by the server: every pixel answer carries both, with the tag's ids.
  {
    const context = await browser.newContext({ userAgent: CHROME });
    const p = await context.newPage();
    const setCookies = [];
    p.on('response', async (r) => {
      if (new URL(r.url()).pathname === '/srv/csc-event') {
        for (const h of await r.headersArray()) {
          if (h.name.toLowerCase() === 'set-cookie') {
            setCookies.push(...h.value.split('\n'));
          }
        }
      }
    });
    await p.goto(`${siteUrl}/srv.html`);
    const first = await ids(p);
    await p.evaluate(() => divolte.signal('clicked'));
    await committed(p);
    await p.goto(`${siteUrl}/srv2.html`);
    const second = await ids(p);
    await committed(p);
    await p.waitForTimeout(200);
    const jar = (await context.cookies()).filter((c) => c.name === '_dvp' || c.name === '_dvs')
      .map((c) => ({ name: c.name, value: c.value, sameSite: c.sameSite, expires: c.expires }));
    out.serverCookies = { first, second, setCookies, jar };
    await context.close();
  }

  // 2. A page on the site posts to JSON sources on the collector's origin:
  //    one allows the site's origin, the other does not.
  {
    const context = await browser.newContext({ userAgent: CHROME });
    const p = await context.newPage();
    await p.goto(`${siteUrl}/blank.html`);
    out.cors = await p.evaluate(async (collectorUrl) => {
      const party = '0:is8tiwk4:GKv5gCc5TtrvBTs9bXfVD8KIQ3oO~sEg';
      const send = async (path, type) => {
        const event = { session_id: '0:is8tiwk4:XLEUVj9hA6AXRUOp2zuIdUpaeFOC~7AU', event_id: type,
          is_new_party: false, is_new_session: false, client_timestamp_iso: new Date().toISOString(), event_type: type };
        try {
          const r = await fetch(`${collectorUrl}${path}?p=${encodeURIComponent(party)}`, {
            method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify(event),
          });
          return { status: r.status };
        } catch (e) {
          return { error: String(e) };
        }
      };
      return { allowed: await send('/app', 'corsAllowed'), refused: await send('/closed', 'corsRefused') };
    }, collector);
    await context.close();
  }

  // 3. Events signalled while the page unloads leave in one beacon to the batch endpoint.
  {
    const context = await browser.newContext({ userAgent: CHROME });
    const p = await context.newPage();
    const seen = watch(p);
    await p.goto(`${siteUrl}/leave.html`);
    await ids(p);
    await committed(p);
    await p.goto(`${siteUrl}/blank.html`);
    await p.waitForTimeout(500);
    out.leave = { requests: seen, committed: await p.evaluate(() => sessionStorage.getItem('committedAtLeave')) };
    await context.close();
  }

  // 4. Global Privacy Control: sent as a header only (the collector holds
  //    the events back), and exposed to scripts (the tag does nothing).
  {
    const context = await browser.newContext({ userAgent: CHROME, extraHTTPHeaders: { 'Sec-GPC': '1' } });
    const p = await context.newPage();
    const seen = watch(p);
    await p.goto(`${siteUrl}/gpc.html`);
    await ids(p);
    await committed(p);
    out.gpcHeader = { requests: seen.length, property: await p.evaluate(() => navigator.globalPrivacyControl) };
    await context.close();

    const withProperty = await browser.newContext({ userAgent: CHROME, extraHTTPHeaders: { 'Sec-GPC': '1' } });
    await withProperty.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true, configurable: true });
    });
    const q = await withProperty.newPage();
    const none = watch(q);
    await q.goto(`${siteUrl}/gpc.html`);
    await q.waitForFunction(() => window.divolte);
    await q.waitForTimeout(500);
    out.gpcProperty = {
      requests: none.length,
      party: await q.evaluate(() => divolte.partyId),
      signalled: await q.evaluate(() => divolte.signal('ignored')),
      cookies: (await withProperty.cookies()).map((c) => c.name),
    };
    await withProperty.close();
  }

  // 5. Consent: nothing before it, a page view with fresh ids on it, cookies gone when withdrawn.
  {
    const context = await browser.newContext({ userAgent: CHROME });
    const p = await context.newPage();
    const seen = watch(p);
    await p.goto(`${siteUrl}/consent.html`);
    await p.waitForFunction(() => window.divolte);
    await p.waitForTimeout(500);
    const before = {
      requests: seen.length,
      party: await p.evaluate(() => divolte.partyId),
      signalled: await p.evaluate(() => divolte.signal('tooEarly')),
      cookies: (await context.cookies()).map((c) => c.name),
    };
    await p.evaluate(() => divolte.consent(true));
    const given = await ids(p);
    await committed(p);
    const during = { requests: seen.length, cookies: (await context.cookies()).map((c) => c.name) };
    await p.evaluate(() => divolte.consent(false));
    const after = {
      signalled: await p.evaluate(() => divolte.signal('tooLate')),
      cookies: (await context.cookies()).map((c) => c.name),
    };
    await p.waitForTimeout(300);
    after.requests = seen.length;
    out.consent = { before, given, during, after };
    await context.close();
  }

  // 6. A headless browser's user agent.
  {
    const context = await browser.newContext({ userAgent: HEADLESS });
    const p = await context.newPage();
    await p.goto(`${siteUrl}/srv.html`);
    out.headless = await ids(p);
    await committed(p);
    await context.close();
  }
} finally {
  await browser.close();
  site.close();
}
console.log(JSON.stringify(out));
