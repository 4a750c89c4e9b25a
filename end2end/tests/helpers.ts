import { expect, Page, APIRequestContext } from '@playwright/test';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The API key the test server was started with. */
export function apiKey(): string {
  return fs.readFileSync(path.join(process.env.HERALD_E2E_DIR!, 'api-key'), 'utf8').trim();
}

/** Calls the REST API as the loyalty platform would. */
export async function api(request: APIRequestContext, method: string, url: string, data?: unknown) {
  const response = await request.fetch(url, {
    method,
    data,
    headers: { authorization: `Bearer ${apiKey()}` },
  });
  return response;
}

/** Waits until the wasm has hydrated the page (the layout flips a marker from an Effect). */
export async function waitForHydration(page: Page) {
  await expect(page.locator('div.app')).toHaveAttribute('data-hydrated', 'true');
}

/** Saves a screenshot for people to look at (end2end/screenshots/ is not committed). */
export async function snap(page: Page, name: string) {
  await page.screenshot({ path: path.join(__dirname, '..', 'screenshots', `${name}.png`), fullPage: true });
}

/** Collects browser console errors so a test can assert there were none. */
export function collectConsoleErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(msg.text());
  });
  page.on('pageerror', (err) => errors.push(err.message));
  return errors;
}

/** Password of the accounts the test server was started with (playwright.config.ts). */
export const PASSWORD = 'e2e passphrase 1234';

/** Signs in through the real form and waits for the Webhooks page. */
export async function signIn(page: Page, who: 'admin' | 'viewer') {
  await page.goto('/login');
  await waitForHydration(page);
  await page.getByLabel('E-mail').fill(`${who}@example.com`);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Webhooks', level: 1 })).toBeVisible();
  await expect(page.getByText(`${who}@example.com`)).toBeVisible();
}
