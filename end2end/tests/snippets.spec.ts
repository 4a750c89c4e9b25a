import { test, expect } from '@playwright/test';
import { signIn, waitForHydration, collectConsoleErrors } from './helpers';

test('the Event Types page shows how to verify each method in four languages', async ({ page }) => {
  const errors = collectConsoleErrors(page);
  await signIn(page, 'viewer');
  await waitForHydration(page);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Event Types' }).click();
  const verify = page.getByRole('region', { name: "Verify Herald's requests" });
  await expect(verify).toBeVisible();
  await verify.getByText('JWT (Authorization: Bearer)').click();
  const jwt = verify.locator('details.method', { hasText: 'JWT (Authorization: Bearer)' });
  // Python is open; the others open on a click.
  await expect(jwt.locator('details.snippet[open] pre')).toContainText('def verify_herald(secret: str, headers: dict, body: bytes)');
  await jwt.getByText('Node.js', { exact: true }).click();
  await expect(jwt.locator('details.snippet').nth(1).locator('pre')).toContainText('function verifyHerald(secret, headers, body)');
  await jwt.getByText('Go', { exact: true }).click();
  await expect(jwt.locator('details.snippet').nth(2).locator('pre')).toContainText('func VerifyHerald(secret string, h http.Header, body []byte) bool');
  await expect(jwt.locator('details.snippet button', { hasText: 'Copy' })).toHaveCount(4);
  expect(errors).toEqual([]);
});
