// The dashboard served for remote access (dashboard.allow_remote) in a real
// headless Chromium: HTTPS on a self-signed certificate made here with the
// openssl CLI (Chromium is told to accept it with --ignore-certificate-errors,
// in this test only) and a bearer token from a 0600 file. The page asks for
// the token, asks again after a wrong one, and shows the jobs with the right
// one; the token is kept for the tab.
//
// Environment (set by ctest, tests/CMakeLists.txt):
//   DROPQ_BINARY, DROPQ_TEST_AGENT   the binaries under test
//   CHROMIUM                         the browser (default /usr/bin/chromium)
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { checks, requireEnv, stopDaemon, waitFor } from './harness.mjs';

const env = requireEnv('DROPQ_BINARY', 'DROPQ_TEST_AGENT');
const bin = env.DROPQ_BINARY;
const agent = env.DROPQ_TEST_AGENT;
const browserPath = process.env.CHROMIUM || '/usr/bin/chromium';
const TOKEN = 'browser-test-token-0123456789abcdef';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dropq-browser-tls-'));
let daemon;
let browser;
const { check, passed } = checks();

try {
  const cert = path.join(root, 'cert.pem');
  const key = path.join(root, 'key.pem');
  const openssl = spawnSync('/usr/bin/openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', key, '-out', cert], { encoding: 'utf8' });
  assert.equal(openssl.status, 0, openssl.stderr);
  const tokenFile = path.join(root, 'dashboard.token');
  fs.writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  fs.writeFileSync(path.join(root, 'dropq.yaml'), [
    'root: var',
    'runtime: bwrap',
    'agent: [/opt/dropq/test-agent]',
    'shutdown_grace: 0',
    'bwrap:',
    '  ro_binds:',
    `    - {host: "${agent}", container: /opt/dropq/test-agent}`,
    'dashboard:',
    '  listen: 127.0.0.1:0',
    '  allow_remote: true',
    `  tls_cert: ${cert}`,
    `  tls_key: ${key}`,
    `  token_file: ${tokenFile}`,
    'groups:',
    '  - {folder: main, name: Main, main: true}',
    ''].join('\n'));
  const tasks = path.join(root, 'var/data/ipc/main/tasks');
  fs.mkdirSync(tasks, { recursive: true });
  fs.writeFileSync(path.join(tasks, 'hello.json.tmp'), JSON.stringify({ prompt: 'echo hello over tls' }));
  fs.renameSync(path.join(tasks, 'hello.json.tmp'), path.join(tasks, 'hello.json'));

  const stderr = fs.openSync(path.join(root, 'daemon.log'), 'w');
  daemon = spawn(bin, ['run', '--config', path.join(root, 'dropq.yaml')], { stdio: ['ignore', stderr, stderr] });
  const base = await waitFor('the dashboard address in the daemon log', async () => {
    const m = fs.readFileSync(path.join(root, 'daemon.log'), 'utf8').match(/dashboard on (https:\/\/127\.0\.0\.1:\d+\/)/);
    return m && m[1];
  }, 30000);

  browser = await chromium.launch({ executablePath: browserPath, headless: true,
    args: ['--no-sandbox', '--ignore-certificate-errors'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(base);

  await check('the page asks for the token and shows no data without it', async () => {
    await page.getByTestId('login').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#main').isVisible(), false);
    assert.equal(await page.getByTestId('job-row').count(), 0);
  });

  await check('a wrong token is refused and the page asks again', async () => {
    await page.getByTestId('token-input').fill('wrong-token-0123456789abcdef');
    await page.getByTestId('token-submit').click();
    await page.getByTestId('login-reason').filter({ hasText: 'refused' }).waitFor();
    assert.equal(await page.getByTestId('login').isVisible(), true);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('dropq.token')), null);
  });

  await check('the right token shows the jobs', async () => {
    await page.getByTestId('token-input').fill(TOKEN);
    await page.getByTestId('token-submit').click();
    await page.getByTestId('status').filter({ hasText: 'updated' }).waitFor();
    assert.equal(await page.getByTestId('login').isVisible(), false);
    await waitFor('the job in the list', async () =>
      (await page.getByTestId('job-row').filter({ hasText: 'echo hello over tls' }).count()) === 1);
  });

  await check('the token is kept for the tab: a reload does not ask again', async () => {
    await page.reload();
    await page.getByTestId('status').filter({ hasText: 'updated' }).waitFor();
    assert.equal(await page.getByTestId('login').isVisible(), false);
    assert.equal(await page.getByTestId('job-row').filter({ hasText: 'echo hello over tls' }).count(), 1);
  });

  await check('the page raised no script errors', async () => {
    assert.deepEqual(pageErrors, []);
  });
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
