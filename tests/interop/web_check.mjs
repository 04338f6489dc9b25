// The search page in headless Chromium (issue 7 item 4, CPS §1.6.1):
//   node web_check.mjs URL CN REVOKED_SERIAL VALID_SERIAL SECRET SCREENSHOT
// loads URL/, searches by CN and by serial, checks the rows (the revoked one
// with its date), the CA, CRL and CPS links, the language switch, that a
// screenshot shows the results, and that SECRET (an identity number) is
// nowhere in the page. Prints one line per failure; exit 1 if any.
import { statSync } from 'node:fs';
import { chromium } from 'playwright-core';

const [url, cn, revoked, valid, secret, shot] = process.argv.slice(2);
const failures = [];
const check = (what, ok) => { if (!ok) failures.push(what); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  const resp = await page.goto(`${url}/`);
  check('page: 200', resp.status() === 200);
  check('page: strict CSP', /default-src 'none'/.test(resp.headers()['content-security-policy'] || ''));
  check('page: Chinese first', (await page.textContent('h1')) === '证书查询');
  await page.waitForSelector('#cas tbody tr[data-ca="sub"]');

  // By CN: the revoked and the valid certificate, newest first.
  await page.fill('#f-cn', cn);
  await page.click('#go');
  await page.waitForSelector(`#results tbody tr[data-serial="${revoked}"]`);
  const rows = await page.$$eval('#results tbody tr', (trs) => trs.map((tr) => ({
    serial: tr.dataset.serial,
    status: tr.querySelector('[data-status]').dataset.status,
    text: tr.textContent,
    links: [...tr.querySelectorAll('a')].map((a) => a.getAttribute('href')),
  })));
  const r = rows.find((x) => x.serial === revoked), v = rows.find((x) => x.serial === valid);
  check(`search by CN: two rows, got ${rows.length}`, rows.length === 2);
  check('revoked row: status revoked', r && r.status === 'revoked');
  check('revoked row: with its date', r && /撤销于 \d{4}-\d{2}-\d{2}/.test(r.text));
  check('revoked row: with its reason', r && /keyCompromise/.test(r.text));
  check('valid row: status valid', v && v.status === 'valid');
  check('valid row: download links', v && v.links.includes(`/certs/${valid}.pem`) &&
    v.links.includes(`/certs/${valid}.der`) && v.links.includes(`/certs/${valid}/pubkey.pem`));
  check('summary counts 2', /共 2 张/.test(await page.textContent('#summary')));

  // By serial (lower case, as a person types it): exactly that one.
  await page.fill('#f-cn', '');
  await page.fill('#f-serial', valid.toLowerCase());
  await page.click('#go');
  await page.waitForFunction((s) => {
    const trs = document.querySelectorAll('#results tbody tr');
    return trs.length === 1 && trs[0].dataset.serial === s;
  }, valid);
  check('search by serial: one row', (await page.$$('#results tbody tr')).length === 1);

  // A certificate's PEM from its link.
  const pem = await page.evaluate(async (s) => (await fetch(`/certs/${s}.pem`)).text(), valid);
  check('PEM download', pem.startsWith('-----BEGIN CERTIFICATE-----'));

  // The CA, CRL and CPS links, each one answering.
  const hrefs = await page.$$eval('#cas a, #cps a', (as) => as.map((a) => a.getAttribute('href')));
  for (const want of ['/ca/root.crt', '/ca/sub.crt', '/crl/root.crl', '/crl/sub.crl', '/cps']) {
    check(`link ${want}`, hrefs.includes(want));
    if (hrefs.includes(want) && want.startsWith('/')) {
      const st = await page.evaluate(async (h) => (await fetch(h)).status, want);
      check(`link ${want} answers 200, got ${st}`, st === 200);
    }
  }
  check('CPS address listed', hrefs.some((h) => /^https?:\/\/.*\/cps$/.test(h)));

  // English.
  await page.fill('#f-serial', '');
  await page.fill('#f-cn', cn);
  await page.click('#go');
  await page.waitForFunction(() => document.querySelectorAll('#results tbody tr').length === 2);
  await page.click('#lang');
  check('English title', (await page.textContent('h1')) === 'Certificate search');
  check('English status', (await page.textContent(`#results tr[data-serial="${revoked}"] .status`)) === 'Revoked');
  check('English summary', /2 certificates/.test(await page.textContent('#summary')));
  check('html lang', (await page.getAttribute('html', 'lang')) === 'en');

  // The screenshot shows a results table of some size, and is not blank.
  const box = await page.locator('#results').boundingBox();
  check('results table has a size', box && box.width > 300 && box.height > 60);
  await page.screenshot({ path: shot, fullPage: true });
  check('screenshot not blank', statSync(shot).size > 20000);
  const clip = await page.screenshot({ clip: box });
  // Counted on a blank page: the search page's CSP rightly refuses data: URLs.
  const blank = await browser.newPage();
  const distinct = await blank.evaluate(async (b64) => {
    const img = await createImageBitmap(await (await fetch(`data:image/png;base64,${b64}`)).blob());
    const c = new OffscreenCanvas(img.width, img.height), g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, img.width, img.height).data, seen = new Set();
    for (let i = 0; i < d.length && seen.size < 64; i += 4 * 7) seen.add(`${d[i]},${d[i + 1]},${d[i + 2]}`);
    return seen.size;
  }, clip.toString('base64'));
  check(`results pixels vary (${distinct} colours)`, distinct >= 8);

  // No identity number anywhere: text, attributes, markup.
  const html = await page.content(), text = await page.evaluate(() => document.body.innerText);
  check('no identity number in the page', !html.includes(secret) && !text.includes(secret));
  check(`no script errors: ${errors.join('; ')}`, errors.length === 0);
} finally {
  await browser.close();
}
for (const f of failures) console.log(`FAIL: ${f}`);
console.log(`web_check: ${failures.length === 0 ? 'ok' : `${failures.length} failed`}`);
process.exit(failures.length === 0 ? 0 : 1);
