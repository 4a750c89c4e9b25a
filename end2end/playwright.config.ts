import { defineConfig } from '@playwright/test';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';

// Each run gets a fresh database and a fresh API key, created before the server starts.
// The config is evaluated again in each worker process; workers inherit the first one's choice.
// A directory made here is removed after the run (teardown.ts); one named in HERALD_E2E_DIR is
// kept, for looking into afterwards.
if (!process.env.HERALD_E2E_DIR) {
  process.env.HERALD_E2E_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-e2e-'));
  process.env.HERALD_E2E_MADE_DIR = process.env.HERALD_E2E_DIR;
}
const runDir = process.env.HERALD_E2E_DIR;
const port = Number(process.env.HERALD_E2E_PORT ?? 3107);
const herald = path.resolve(__dirname, '..', process.env.HERALD_BIN ?? 'target/release/herald');
const db = `sqlite://${runDir}/e2e.db?mode=rwc`;
process.env.HERALD_E2E_BASE = `http://127.0.0.1:${port}`;
/** Password of the e2e admin and viewer (see tests/helpers.ts). */
const PASSWORD = 'e2e passphrase 1234';

export default defineConfig({
  testDir: './tests',
  globalTeardown: './teardown.ts',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    trace: 'off',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  webServer: {
    // An API key, an admin (who also manages the install) and a viewer (password on stdin, as
    // scripts do), then the server.
    command: [
      `"${herald}" api-key create --name e2e --database-url "${db}" > "${runDir}/api-key"`,
      `echo '${PASSWORD}' | "${herald}" user create --email admin@example.com --role admin --install-admin --database-url "${db}"`,
      `echo '${PASSWORD}' | "${herald}" user create --email viewer@example.com --role viewer --database-url "${db}"`,
      // A program with a week of history made by the real engine (flags.spec.ts).
      `RUST_LOG=error "${herald}" seed --program "Seeded history" --database-url "${db}" > /dev/null`,
      // A program with more webhooks than a page of the list holds (shell.spec.ts).
      `RUST_LOG=error "${herald}" seed --program "Many webhooks" --webhooks 53 --database-url "${db}" > /dev/null 2>&1`,
      `exec "${herald}" serve --addr 127.0.0.1:${port} --database-url "${db}"`,
    ].join(' && '),
    url: `http://127.0.0.1:${port}/healthz`,
    cwd: path.resolve(__dirname, '..'),
    env: {
      // The debug build's own site root (scripts/test.sh), so it never overwrites the release site.
      LEPTOS_SITE_ROOT: path.resolve(__dirname, '..', process.env.LEPTOS_SITE_ROOT ?? 'target/site'),
      HERALD_ALLOW_PRIVATE_TARGETS: 'true',
      RUST_LOG: 'warn',
    },
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'pipe',
    stderr: 'pipe',
  },
});
