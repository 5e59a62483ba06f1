// The dashboard in a real headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core) against a real dropq daemon that ran jobs in
// bubblewrap: load the page, check what it shows, save a screenshot.
//
// Environment (set by ctest, tests/CMakeLists.txt):
//   DROPQ_BINARY, DROPQ_TEST_AGENT   the binaries under test
//   DROPQ_SCREENSHOT                 where to save the PNG (under the build dir)
//   CHROMIUM                         the browser (default /usr/bin/chromium)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { checks, requireEnv, stopDaemon, waitFor } from './harness.mjs';

const env = requireEnv('DROPQ_BINARY', 'DROPQ_TEST_AGENT', 'DROPQ_SCREENSHOT');
const bin = env.DROPQ_BINARY;
const agent = env.DROPQ_TEST_AGENT;
const screenshot = env.DROPQ_SCREENSHOT;
const browserPath = process.env.CHROMIUM || '/usr/bin/chromium';

const XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script> & "quotes"';

function drop(root, group, name, body) {
  const dir = path.join(root, 'var/data/ipc', group, 'tasks');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${name}.tmp`), JSON.stringify(body));
  fs.renameSync(path.join(dir, `${name}.tmp`), path.join(dir, name));
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dropq-browser-'));
let daemon;
let browser;
const { check, passed } = checks();

try {
  fs.writeFileSync(path.join(root, 'dropq.yaml'), [
    'root: var',
    'runtime: bwrap',
    'agent: [/opt/dropq/test-agent]',
    'max_concurrent: 3',
    'kill_grace: 500ms',
    'shutdown_grace: 0',
    'bwrap:',
    '  ro_binds:',
    `    - {host: "${agent}", container: /opt/dropq/test-agent}`,
    'dashboard:',
    '  listen: 127.0.0.1:0',
    'groups:',
    '  - {folder: main, name: Main, main: true}',
    '  - {folder: team, name: Team}',
    '  - {folder: other, name: Other}',
    'schedules:',
    '  - {id: nightly-report, group: team, cron: "0 3 * * *", tz: Europe/Paris, prompt: echo nightly}',
    ''].join('\n'));
  for (const g of ['main', 'team', 'other']) fs.mkdirSync(path.join(root, 'var/data/ipc', g, 'tasks'), { recursive: true });
  drop(root, 'main', 'hello.json', { prompt: 'echo hello from main' });
  drop(root, 'team', 'a.json', { prompt: 'echo first' });
  drop(root, 'team', 'b.json', { prompt: 'echo second' });
  drop(root, 'team', 'broken.json', { prompt: 'fail deliberately' });
  drop(root, 'team', 'xss.json', { prompt: XSS });
  drop(root, 'other', 'slow.json', { prompt: 'sleep 600000' });

  const stderr = fs.openSync(path.join(root, 'daemon.log'), 'w');
  daemon = spawn(bin, ['run', '--config', path.join(root, 'dropq.yaml')], { stdio: ['ignore', stderr, stderr] });
  const base = await waitFor('the dashboard address in the daemon log', async () => {
    const m = fs.readFileSync(path.join(root, 'daemon.log'), 'utf8').match(/dashboard on (http:\/\/127\.0\.0\.1:\d+\/)/);
    return m && m[1];
  }, 30000);
  const api = async (p) => (await fetch(new URL(p, base))).json();
  await waitFor('five finished jobs and one running', async () => {
    const o = await api('/api/overview');
    const finished = o.counts.filter((c) => ['succeeded', 'failed'].includes(c.state)).reduce((n, c) => n + c.count, 0);
    return finished === 5 && o.running.length === 1;
  });

  browser = await chromium.launch({ executablePath: browserPath, headless: true, args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  const offsite = [];
  page.on('request', (r) => { if (!r.url().startsWith(base)) offsite.push(r.url()); });
  page.on('response', (r) => { if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`); });
  await page.goto(base);
  await page.getByTestId('status').filter({ hasText: 'updated' }).waitFor();
  const text = async (testid) => (await page.getByTestId(testid).first().textContent()).trim();

  await check('the summary counts jobs by state', async () => {
    assert.match(await text('total-succeeded'), /succeeded\s*4$/);
    assert.match(await text('total-failed'), /failed\s*1$/);
    assert.match(await text('total-running'), /running\s*1$/);
    assert.match(await text('containers-running'), /containers running\s*1$/);
  });

  await check('the counts table splits them by group', async () => {
    assert.equal(await text('count-team-succeeded'), '3');
    assert.equal(await text('count-team-failed'), '1');
    assert.equal(await text('count-main-succeeded'), '1');
    assert.equal(await text('count-other-running'), '1');
  });

  await check('the running job is listed with its elapsed time', async () => {
    const rows = page.getByTestId('running-row');
    assert.equal(await rows.count(), 1);
    assert.match(await rows.first().textContent(), /sleep 600000/);
    assert.match(await rows.first().getByTestId('elapsed').textContent(), /^\d+ (ms|s|m \d+ s)$/);
  });

  await check('the chart has a bar per minute of the last hour holding the five finished jobs', async () => {
    const bars = page.getByTestId('bar');
    assert.equal(await bars.count(), 60);
    const counts = await bars.evaluateAll((gs) => gs.map((g) => Number(g.dataset.count)));
    assert.equal(counts.reduce((a, b) => a + b, 0), 5);
    assert.equal(await text('chart-total'), '5 in the last hour');
    assert.ok(await page.locator('[data-testid=chart] svg rect.failed').count() >= 1);
  });

  await check('recent jobs are listed and the state filter narrows them', async () => {
    assert.equal(await page.getByTestId('job-row').count(), 6);
    await page.getByTestId('filter-state').selectOption('failed');
    await waitFor('the failed filter', async () => (await page.getByTestId('job-row').count()) === 1, 10000);
    const row = page.getByTestId('job-row').first();
    assert.equal(await row.getAttribute('data-state'), 'failed');
    assert.match(await row.textContent(), /fail deliberately/);
    await page.getByTestId('filter-state').selectOption('');
    await page.getByTestId('filter-group').selectOption('main');
    // The failed filter also left one row: wait for main's, not just for one.
    await waitFor('the group filter', async () => {
      const rows = page.getByTestId('job-row');
      return (await rows.count()) === 1 && /hello from main/.test(await rows.first().textContent());
    }, 10000);
    assert.match(await page.getByTestId('job-row').first().textContent(), /hello from main/);
    await page.getByTestId('filter-group').selectOption('');
    await waitFor('all jobs again', async () => (await page.getByTestId('job-row').count()) === 6, 10000);
  });

  await check('a prompt full of markup is shown as text and runs nothing', async () => {
    const cell = page.locator('[data-testid=jobs] td.prompt', { hasText: '<img src=x' });
    assert.equal(await cell.count(), 1);
    assert.equal((await cell.textContent()).trim(), XSS);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    assert.equal(await page.locator('img').count(), 0);
  });

  await check("a job's detail shows its events, output and run log", async () => {
    const row = page.getByTestId('job-row').filter({ hasText: 'hello from main' });
    await row.getByRole('link').click();
    const detail = page.getByTestId('detail');
    await detail.waitFor({ state: 'visible' });
    const events = await page.getByTestId('event-row').evaluateAll((rs) => rs.map((r) => r.children[1].textContent));
    assert.deepEqual(events, ['received', 'started', 'output', 'succeeded']);
    assert.match(await text('detail-output'), /"echo": "hello from main"/);
    // At info level the run log is the summary NanoClaw writes (no output).
    assert.match(await text('detail-log'), /=== Container Run Log ===[\s\S]*Group: main[\s\S]*Status: succeeded/);
    assert.match(await text('detail-runs'), /succeeded/);
  });

  await check('scheduled tasks show their next run in their own zone, as dropq tasks does', async () => {
    const row = page.getByTestId('task-row');
    assert.equal(await row.count(), 1);
    assert.match(await row.textContent(), /nightly-report/);
    assert.match(await row.getByTestId('next-run').textContent(), /^in .*\(\d{4}-\d\d-\d\d 03:00:00 Europe\/Paris\)$/);
  });

  await check('the page loaded nothing from elsewhere and logged no errors', async () => {
    assert.deepEqual(offsite, []);
    assert.deepEqual(errors, []);
  });

  fs.mkdirSync(path.dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot: ${screenshot}`);
  console.log(`${passed()} passed, 0 failed`);
} catch (e) {
  console.error(e);
  try { console.error(fs.readFileSync(path.join(root, 'daemon.log'), 'utf8').slice(-4000)); } catch {}
  console.log(`${passed()} passed, 1 failed`);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
  if (daemon) await stopDaemon(daemon);
  fs.rmSync(root, { recursive: true, force: true });
}
