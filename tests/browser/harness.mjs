// What the browser tests share: their environment, waiting on a real
// daemon's effects, and counting the checks that passed.
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The named environment variables (set by ctest, tests/CMakeLists.txt);
// throws naming the first one missing.
export function requireEnv(...names) {
  const out = {};
  for (const k of names) {
    if (!process.env[k]) throw new Error(`${k} is not set`);
    out[k] = process.env[k];
  }
  return out;
}

// Waits for a real daemon's effects (not a timing assertion): polls `check`
// until it returns a truthy value or `ms` passes.
export async function waitFor(what, check, ms = 60000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check().catch(() => null);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

// Named checks, each printed as it passes; `passed()` counts them.
export function checks() {
  let passed = 0;
  return {
    check: async (name, fn) => {
      await fn();
      passed += 1;
      console.log(`ok - ${name}`);
    },
    passed: () => passed,
  };
}

// SIGTERM to the daemon, then its exit.
export async function stopDaemon(daemon) {
  daemon.kill('SIGTERM');
  await new Promise((r) => (daemon.exitCode !== null ? r() : daemon.on('exit', r)));
}
