// The operators' console in headless chromium (Debian's /usr/bin/chromium, driven by
// playwright-core), against a `serve` that tests/console/browser_test.cc started with both
// environments. Environment: BACKBONE_URL, SANDBOX_ADMIN, SANDBOX_READER, PRODUCTION_ADMIN (tokens),
// SCREENSHOT_DIR. Every wait is for something the page or the server shows, bounded in time.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { chromium } = require('playwright-core');

const BASE = process.env.BACKBONE_URL;
const ADMIN = process.env.SANDBOX_ADMIN;
const READER = process.env.SANDBOX_READER;
const PROD = process.env.PRODUCTION_ADMIN;
const SHOTS = process.env.SCREENSHOT_DIR;
const TOKENS = [ADMIN, READER, PROD];

let browser;
let page;
const errors = []; // the browser console's errors and the page's uncaught exceptions

// ---- the API, from Node ---------------------------------------------------------------------
async function api(token, method, p, body) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(BASE + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}
async function post(events) {
  const r = await api(ADMIN, 'POST', '/v1/envs/sandbox/events', events);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.events.map((e) => e.id);
}
const ev = (type, id, base, changes, source = 'crm') => ({ record_type: type, record_id: id, source, base_version: base, changes });
async function processed(id) {
  const r = await api(ADMIN, 'GET', `/v1/envs/sandbox/events/${id}?wait_ms=20000`);
  assert.equal(r.status, 200);
  assert.equal(r.body.processed, true, `event ${id} was not processed in 20 s`);
}
// Polls `probe` every 100 ms until it returns a truthy value (at most `ms`).
async function until(what, probe, ms = 60000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const dlqTotal = async (filter) => (await api(ADMIN, 'GET', `/v1/envs/sandbox/dlq?limit=1&${filter}`)).body.total;

// ---- the browser ----------------------------------------------------------------------------
async function shot(name) {
  assert.ok(!TOKENS.some((t) => page.url().includes(t)), 'a token is in the URL');
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}
async function signIn(token) {
  await page.goto(`${BASE}/console`);
  await page.fill('#token-input', token);
  await page.click('#sign-in-form button[type=submit]');
  await page.waitForSelector('#banner:not([hidden])');
}
// Goes to `hash` and waits for `selector` on the page it shows (not the page before).
async function nav(hash, selector) {
  const name = hash.slice(2).split('?')[0];
  await page.evaluate((h) => { document.getElementById('view').dataset.page = ''; location.hash = h; }, hash);
  await page.waitForSelector(`#view[data-page="${name}"] ${selector}`);
}
const text = (sel) => page.textContent(sel);
async function confirm() {
  await page.waitForSelector('#dialog-backdrop:not([hidden])');
  await page.click('#dialog-confirm');
  await page.waitForSelector('#dialog-backdrop', { state: 'hidden' });
}
async function decisions(type, id) {
  await nav(`#/records?type=${type}&id=${id}`, '#timeline');
  return page.$$eval('#timeline tbody tr', (rows) => rows.map((r) => ({ id: r.dataset.event, decision: r.querySelector('.pill').textContent })));
}

before(async () => {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(20000);
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
});
after(async () => { if (browser) await browser.close(); });

const ids = {};

test('a wrong token is refused, and the right one signs in to its environment', async () => {
  await page.goto(`${BASE}/console`);
  await shot('sign-in');
  await page.fill('#token-input', 'bb_sandbox_thisisnotatokenofanyone');
  await page.click('#sign-in-form button[type=submit]');
  await page.waitForFunction(() => document.getElementById('sign-in-error').textContent.includes('Sign-in failed'));
  // The one error the browser logs for this: the refused request itself.
  assert.ok(errors.length <= 1 && errors.every((e) => e.includes('401')), errors.join('\n'));
  errors.length = 0;
  await signIn(ADMIN);
  assert.equal(await text('#env-badge'), 'sandbox');
  assert.equal(await page.$eval('#prod-warning', (w) => w.hidden), true);
  assert.equal(await page.$eval('#banner', (b) => b.classList.contains('production')), false);
  assert.ok((await text('#who')).includes('console-admin'));
  // The token is kept in memory only.
  assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length + document.cookie.length), 0);
});

test('posted events appear in the timeline with their merge decisions', async () => {
  [ids.c1v1] = await post([ev('customer', 'c-1', 0, { name: 'Ada', tier: 'gold' })]);
  await processed(ids.c1v1);
  [ids.c1v2] = await post([ev('customer', 'c-1', 1, { tier: 'platinum' })]);
  await processed(ids.c1v2);
  [ids.c1conflict] = await post([ev('customer', 'c-1', 1, { tier: 'silver' }, 'billing')]);
  await processed(ids.c1conflict);
  [ids.c1rebase] = await post([ev('customer', 'c-1', 1, { name: 'Ada L.' })]);
  await processed(ids.c1rebase);
  const d = await decisions('customer', 'c-1');
  assert.deepEqual(d.map((x) => x.decision), ['fast-forward', 'fast-forward', 'dead-lettered', 'rebased']);
  assert.deepEqual(d.map((x) => x.id), [ids.c1v1, ids.c1v2, ids.c1conflict, ids.c1rebase]);
  assert.ok((await text('#record-state h2')).includes('version 3'));
  await shot('record');
  // The state as of version 1, and the diff from 1 to 3.
  await page.fill('#diff-from', '1');
  await page.fill('#diff-to', '3');
  await page.click('#diff-form button');
  await page.waitForSelector('#diff tbody tr');
  const diff = await page.$$eval('#diff tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
  assert.deepEqual(diff, [['name', '"Ada"', '"Ada L."'], ['tier', '"gold"', '"platinum"']]);
  assert.deepEqual(JSON.parse(await text('#state-as-of')), { name: 'Ada L.', tier: 'platinum' });
  await shot('record-diff');
});

test('an event is found by its id and by its fingerprint', async () => {
  await nav(`#/events?id=${ids.c1conflict}`, '.event-found');
  const shown = JSON.parse(await text('.event-found pre'));
  assert.equal(shown.id, ids.c1conflict);
  await shot('event');
  await nav(`#/events?id=${shown.fingerprint}`, '.event-found');
  assert.equal(JSON.parse(await text('.event-found pre')).id, ids.c1conflict);
});

test('the overview shows every subscription and live rates', async () => {
  await nav('#/overview', '#subscriptions tbody tr');
  const subs = await page.$$eval('#subscriptions tbody tr', (rows) => rows.map((r) => r.dataset.subscription));
  assert.equal(subs.length, 5, subs.join(','));
  assert.ok(subs.includes('events.raw.sandbox.merge'), subs.join(','));
  assert.ok(subs.every((s) => !s.includes('production')), 'production subscriptions shown to a sandbox token');
  // Two polls make the first rates.
  await page.waitForFunction(() => /ingested: \d/.test(document.querySelector('.chart .legend').textContent), null, { timeout: 10000 });
  const members = await page.$$eval('#members tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
  assert.equal(members.length, 1, JSON.stringify(members));
  assert.equal(members[0][2], '64'); // one process owns every bucket
  assert.equal(members[0][3], '0–63');
  await shot('overview');
});

test('a conflict is dry-run, accepted, discarded and replayed from the DLQ, and the counts change', async () => {
  [ids.c2v1] = await post([ev('customer', 'c-2', 0, { a: 1 })]);
  await processed(ids.c2v1);
  [ids.c2conflict] = await post([ev('customer', 'c-2', 0, { a: 2 })]);
  [ids.c3v1] = await post([ev('customer', 'c-3', 0, { a: 1 })]);
  await processed(ids.c3v1);
  [ids.c3conflict] = await post([ev('customer', 'c-3', 0, { a: 3 })]);
  await processed(ids.c2conflict);
  await processed(ids.c3conflict);
  await nav('#/dlq?record_type=customer', '#dlq-table');
  assert.equal(await text('#dlq-total'), '3 dead letters');
  const listed = await page.$$eval('#dlq-table tbody tr', (rows) => rows.map((r) => r.dataset.event));
  assert.deepEqual(listed, [ids.c1conflict, ids.c2conflict, ids.c3conflict]);
  await shot('dlq');
  // Replay all that match: the dry run shows which, in order; cancelled, nothing moves.
  await page.click('#dlq-replay-all');
  await page.waitForSelector('#dry-run li');
  assert.ok((await text('#dry-run')).includes('these 3 dead letters'));
  const preview = await page.$$eval('#dry-run li', (li) => li.map((x) => x.textContent));
  assert.ok(preview[0].includes('customer/c-1') && preview[2].includes('customer/c-3'), preview.join('\n'));
  await shot('dlq-dry-run');
  await page.click('#dialog-cancel');
  assert.equal(await dlqTotal('record_type=customer'), 3);

  // Accept c-1's conflict: its change applies on the current version.
  await nav(`#/dlq-entry?id=${ids.c1conflict}`, '#dlq-detail');
  assert.ok((await text('#dlq-history')).includes('dead_lettered'));
  await page.fill('#resolve-note', 'billing is right about the tier');
  await shot('dlq-entry');
  await page.click('#dlq-accept');
  await confirm();
  await page.waitForFunction(() => document.getElementById('resolve-status').textContent.includes('done'));
  const v4 = await api(ADMIN, 'GET', '/v1/envs/sandbox/records/customer/c-1?min_version=4&wait_ms=20000');
  assert.equal(v4.body.version, 4);
  assert.equal(v4.body.state.tier, 'silver');
  assert.equal((await decisions('customer', 'c-1')).find((x) => x.id === ids.c1conflict).decision, 'accepted');

  // Discard c-2's.
  await nav(`#/dlq-entry?id=${ids.c2conflict}`, '#dlq-detail');
  await page.click('#dlq-discard');
  await confirm();
  await page.waitForFunction(() => document.getElementById('resolve-status').textContent.includes('done'));
  assert.equal((await decisions('customer', 'c-2')).find((x) => x.id === ids.c2conflict).decision, 'discarded');
  assert.equal(await dlqTotal('record_type=customer'), 1);

  // Replay c-3's by selecting it: `reject` dead-letters it again, after a `replayed` entry.
  await nav('#/dlq?record_type=customer', '#dlq-table');
  assert.equal(await text('#dlq-total'), '1 dead letter');
  await page.check(`#dlq-table tr[data-event="${ids.c3conflict}"] input[type=checkbox]`);
  await page.click('#dlq-replay-selected');
  await page.waitForSelector('#replay-selection li');
  assert.deepEqual(await page.$$eval('#replay-selection li', (li) => li.map((x) => x.textContent)), [`customer/c-3 — ${ids.c3conflict}`]);
  await confirm();
  await page.waitForFunction(() => document.getElementById('dlq-status')?.textContent.includes('Replayed 1')
    || document.querySelector('#view[data-page="dlq"] #dlq-table'));
  await until('the replayed event to be dead-lettered again', async () => {
    const d = await api(ADMIN, 'GET', `/v1/envs/sandbox/dlq/${ids.c3conflict}`);
    const actions = d.status === 200 ? d.body.audit.map((a) => a.action) : [];
    const r = actions.lastIndexOf('replayed');
    return r >= 0 && actions.lastIndexOf('dead_lettered') > r;
  }, 30000);
  assert.equal(await dlqTotal('record_type=customer'), 1);
});

// Two hash changes in a row: the first visit still awaits the server when the second starts. It
// used to go on appending into the view shown, so the page held two of each element and id, and a
// button of one copy set the status line of the other (the poison step below timed out so, twice
// in fresh runs under load).
test('a page left while it loads leaves nothing of itself on the page shown next', async () => {
  await until('the inspector to hold the poison message', async () =>
    (await api(READER, 'GET', '/v1/envs/sandbox/poison')).body.poison.length === 1, 30000);
  let answered = 0;
  const count = (r) => { if (r.url().includes('/v1/envs/sandbox/poison')) answered += 1; };
  page.on('requestfinished', count);
  await page.evaluate(() => { location.hash = '#/dlq?offset=0'; location.hash = '#/dlq?again=1'; });
  await until('both visits to have their last answer', async () => answered >= 2, 30000);
  page.off('requestfinished', count);
  await page.waitForSelector('#view[data-page="dlq"] #poison');
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r())));
  assert.equal(await page.$$eval('#dlq-status', (e) => e.length), 1);
  assert.equal(await page.$$eval('#poison', (e) => e.length), 1);
});

test('a poison message is listed with the dead letters and an admin discards it', async () => {
  const listed = await until('the inspector to hold the poison message', async () => {
    const r = await api(READER, 'GET', '/v1/envs/sandbox/poison');
    return r.body.poison.length === 1 ? r.body.poison[0] : null;
  }, 30000);
  assert.equal(listed.data, 'this is not an event');
  await nav('#/dlq', '#poison');
  assert.ok((await text('#poison h2')).includes('1 poison message'));
  const row = `#poison tr[data-message="${listed.message_id}"]`;
  assert.ok((await text(row)).includes('this is not an event'));
  await shot('dlq-poison');
  await page.click(`${row} button`);
  await confirm();
  await page.waitForFunction(() => document.getElementById('dlq-status').textContent.includes('Discarded poison message'));
  const acts = (await api(ADMIN, 'GET', '/v1/envs/sandbox/admin-audit')).body;
  assert.ok(JSON.stringify(acts).includes('dlq.discard_poison'), JSON.stringify(acts));
});

test('the audit chain verifies with progress, and an entry shows its chain', async () => {
  await nav('#/audit', '#audit-verify-start');
  await page.click('#audit-verify-start');
  await page.waitForSelector('#audit-ok', { timeout: 60000 });
  assert.match(await text('#audit-ok'), /The audit chain is intact: [\d,]+ entries verified/);
  assert.equal(await page.$eval('#audit-progress', (p) => p.getAttribute('aria-valuenow')), '100');
  await shot('audit');
  const entry = (await api(ADMIN, 'GET', `/v1/envs/sandbox/records/customer/c-1/audit`)).body.audit.at(-1).id;
  await nav(`#/audit?entry=${entry}`, '#audit-chain tbody tr');
  const links = await page.$$eval('#audit-chain tbody tr', (rows) => rows.map((r) => r.cells[4].textContent));
  assert.ok(links.length >= 2 && !links.includes('broken'), links.join(','));
  assert.ok(links.slice(1).every((l) => l === 'links'), links.join(','));
  await shot('audit-chain');
});

test('an admin makes a token, sees it once, and revokes it', async () => {
  await nav('#/tokens', '#tokens-table tbody tr');
  const before = await page.$$eval('#tokens-table tbody tr', (r) => r.length);
  await page.fill('#token-name', 'ci-bot');
  await page.click('#token-form button[type=submit]');
  await page.waitForSelector('#token-secret');
  const secret = (await text('#token-secret')).trim();
  assert.match(secret, /^bb_sandbox_/);
  await page.waitForFunction((n) => document.querySelectorAll('#tokens-table tbody tr').length === n + 1, before);
  assert.equal((await api(secret, 'GET', '/v1/whoami')).status, 200);
  await shot('tokens');
  const row = await page.$$eval('#tokens-table tbody tr', (rows) => rows.find((r) => r.cells[1].textContent === 'ci-bot').dataset.token);
  await page.click(`#tokens-table tr[data-token="${row}"] button`);
  await confirm();
  await page.waitForFunction((id) => document.querySelector(`#tokens-table tr[data-token="${id}"]`).cells[6].textContent !== '', row);
  assert.equal((await api(secret, 'GET', '/v1/whoami')).status, 401);
});

test('pages stay paged and quick with 10,000 records and 1,000 dead letters', async () => {
  // The overview while they are merged: the rates and the latency rise.
  await nav('#/overview', '#subscriptions tbody tr');
  const n = 10000;
  for (let b = 0; b < n; b += 1000) {
    await post(Array.from({ length: 1000 }, (_, i) => ev('perf', `p-${b + i}`, 0, { v: b + i })));
  }
  await post(Array.from({ length: 1000 }, (_, i) => ev('perf', `p-${i}`, 0, { v: -1 }, 'late')));
  // Each chart keeps the peak of its series over its two minutes (data-peak0, data-peak1): the
  // merges may all be over before the posting is, on a slow machine.
  await page.waitForFunction(() => {
    const [rates, latency] = document.querySelectorAll('.chart');
    return Number(rates.dataset.peak1) > 0 && Number(latency.dataset.peak0) > 0;
  }, null, { timeout: 30000 });
  await shot('overview-busy');
  await until('1,000 perf dead letters', async () => (await dlqTotal('record_type=perf')) === 1000, 120000);
  let t = Date.now();
  await nav('#/dlq?record_type=perf', '#dlq-table tbody tr');
  const dlqMs = Date.now() - t;
  assert.equal(await text('#dlq-total'), '1000 dead letters');
  assert.equal(await page.$$eval('#dlq-table tbody tr', (r) => r.length), 50);
  assert.ok((await text('.pager')).includes('1–50 of 1000'));
  await shot('dlq-1000');
  t = Date.now();
  await page.click('#dlq-next');
  await page.waitForFunction(() => document.querySelector('.pager') && document.querySelector('.pager').textContent.includes('51–100 of 1000'));
  const nextMs = Date.now() - t;
  t = Date.now();
  await nav('#/records?type=perf&id=p-5000', '#timeline tbody tr');
  const recordMs = Date.now() - t;
  t = Date.now();
  await nav('#/overview', '#subscriptions tbody tr');
  const overviewMs = Date.now() - t;
  console.log(`page times with 10,000 records and 1,000 dead letters: dlq ${dlqMs} ms, next page ${nextMs} ms, record ${recordMs} ms, overview ${overviewMs} ms`);
  for (const ms of [dlqMs, nextMs, recordMs, overviewMs]) assert.ok(ms < 5000, `a page took ${ms} ms`);
});

test('a read-only token sees no admin controls', async () => {
  await signIn(READER);
  assert.equal(await page.$eval('#nav a[data-page="tokens"]', (a) => a.hidden), true);
  await nav('#/dlq?record_type=customer', '#dlq-table');
  assert.equal(await page.$eval('#dlq-replay-all', (b) => b.hidden), true);
  assert.equal(await page.$$eval('#dlq-table input[type=checkbox]:not([hidden])', (b) => b.length), 0);
  await nav(`#/dlq-entry?id=${ids.c3conflict}`, '#dlq-detail');
  assert.equal(await page.$('#dlq-accept'), null);
  await shot('reader');
});

test('production is unmistakable, and a sandbox token does not see it', async () => {
  assert.equal((await api(ADMIN, 'GET', '/v1/envs/production/topology')).status, 403);
  assert.equal((await api(ADMIN, 'GET', '/v1/envs/production/dlq')).status, 403);
  assert.equal((await api(PROD, 'GET', '/v1/envs/sandbox/records/customer/c-1')).status, 403);
  await signIn(PROD);
  assert.equal(await page.$eval('#banner', (b) => b.classList.contains('production')), true);
  assert.equal(await text('#env-badge'), 'production');
  assert.equal(await page.$eval('#prod-warning', (w) => w.hidden), false);
  assert.equal(await page.$eval('#banner', (b) => getComputedStyle(b).backgroundColor), 'rgb(179, 38, 30)');
  await nav('#/records?type=customer&id=c-1', '#record-missing');
  await nav('#/overview', '#subscriptions tbody tr');
  const subs = await page.$$eval('#subscriptions tbody tr', (rows) => rows.map((r) => r.dataset.subscription));
  assert.ok(subs.every((s) => s.includes('production')), subs.join(','));
  await shot('production');
});

test('a tampered audit entry is shown where the chain breaks', async () => {
  // Rewrite one entry's detail in the SQLite file, as someone with write access to it might.
  const entry = (await api(ADMIN, 'GET', '/v1/envs/sandbox/records/customer/c-2/audit')).body.audit.at(-1).id;
  execFileSync('sqlite3', [process.env.SANDBOX_DB, 'DROP TRIGGER audit_refuse_update;'
    + ` UPDATE event_audit_log SET detail = '{"tampered":true}' WHERE id = '${entry}';`]);
  await signIn(ADMIN);
  await nav('#/audit', '#audit-verify-start');
  await page.click('#audit-verify-start');
  await page.waitForSelector('#audit-broken', { timeout: 60000 });
  assert.ok((await text('#audit-broken')).includes(entry), await text('#audit-broken'));
  await page.click('#audit-broken a');
  await page.waitForSelector('#audit-chain tr.broken');
  const broken = await page.$$eval('#audit-chain tr.broken', (rows) => rows.map((r) => r.cells[0].textContent));
  assert.deepEqual(broken, [entry]);
  await shot('audit-broken');
});

test('the browser logged no errors', () => {
  assert.deepEqual(errors, []);
});
