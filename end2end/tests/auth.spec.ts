import { test, expect } from '@playwright/test';
import { api, signIn, waitForHydration, snap, collectConsoleErrors, PASSWORD } from './helpers';

test('anonymous visitors are sent to sign in; a wrong password is refused inline; sign out ends the session', async ({ page }) => {
  const errors = collectConsoleErrors(page);
  const response = await page.goto('/audit-logs');
  await expect(page).toHaveURL(/\/login\?next=%2Faudit-logs$/);
  expect(response?.status()).toBe(200);
  await waitForHydration(page);
  await expect(page.getByRole('navigation', { name: 'Main' })).toBeHidden();
  await page.getByLabel('E-mail').fill('admin@example.com');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByText('E-mail or password is incorrect')).toBeVisible();
  await snap(page, 'sign-in-error');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  // Back where they were going.
  await expect(page.getByRole('heading', { name: 'Audit Logs', level: 1 })).toBeVisible();
  await expect(page.getByText('admin@example.com')).toBeVisible();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('heading', { name: 'Sign in to Herald' })).toBeVisible();
  await page.goto('/');
  await expect(page).toHaveURL(/\/login$/);
  // The refused sign-in answers 401, which the browser reports; nothing else may appear.
  const unexpected = errors.filter((e) => !/status of 401/.test(e));
  expect(unexpected, 'no console errors (CSP violations would show here)').toEqual([]);
});

test('without JavaScript, a refused sign-in comes back with its message and the right password signs in', async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto('/login');
  await page.getByLabel('E-mail').fill('viewer@example.com');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByText('E-mail or password is incorrect')).toBeVisible();
  await expect(page).toHaveURL(/\/login/);
  // The message sits inside the password's label too, so the label is matched exactly.
  await page.getByLabel('E-mail', { exact: true }).fill('viewer@example.com');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Webhooks', level: 1 })).toBeVisible();
  await expect(page.getByText('viewer@example.com')).toBeVisible();
  await context.close();
});

test('a viewer reads everything but sees no Create, Edit, Delete or Send Test, and a forged call is refused', async ({ page, request }) => {
  const errors = collectConsoleErrors(page);
  const created = await api(request, 'POST', '/api/v1/webhooks', {
    name: 'Read only for viewers',
    url: 'http://127.0.0.1:9/hook',
    event_types: ['points.awarded'],
  });
  expect(created.status()).toBe(201);
  const hook = await created.json();

  await signIn(page, 'viewer');
  await expect(page.getByText('Viewer', { exact: true })).toBeVisible();
  const row = page.getByRole('row').filter({ hasText: 'Read only for viewers' });
  await expect(row).toBeVisible();
  await expect(row.getByRole('link', { name: 'Logs' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Create Webhook' })).toHaveCount(0);
  await expect(row.getByRole('link', { name: 'Edit' })).toHaveCount(0);
  await expect(row.getByText('Delete')).toHaveCount(0);
  await expect(row.getByRole('link', { name: 'Send Test' })).toHaveCount(0);
  await expect(row.getByRole('switch')).toHaveCount(0);
  await snap(page, 'viewer-webhooks');

  await page.getByRole('link', { name: 'Read only for viewers' }).click();
  await expect(page.getByRole('heading', { name: /Read only for viewers/, level: 1 })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Send Test' })).toHaveCount(0);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
  await expect(page.getByText('SQLite')).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Members' })).toHaveCount(0);
  await expect(page.getByRole('heading', { name: 'API keys' })).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Activity' })).toHaveCount(0);

  // The browser holds a valid viewer session; calling the server function by hand is refused.
  const forged = await page.evaluate(async (id) => {
    const program = location.pathname.split('/')[2];
    const r = await fetch('/sfn/delete_webhook', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `program=${encodeURIComponent(program)}&id=${encodeURIComponent(id)}`,
    });
    return { status: r.status, body: await r.text() };
  }, hook.id);
  expect(forged.status).toBe(403);
  expect(forged.body).toContain('Forbidden');
  const still = await api(request, 'GET', `/api/v1/webhooks/${hook.id}`);
  expect(still.status()).toBe(200);
  await api(request, 'DELETE', `/api/v1/webhooks/${hook.id}`);
  // Only the forged call's 403 may show in the console.
  expect(errors.filter((e) => !/status of 403/.test(e))).toEqual([]);
});

test('an admin creates an API key (shown once), sees it listed, revokes it, adds a viewer, and reads the activity log', async ({ page, request }) => {
  const errors = collectConsoleErrors(page);
  await signIn(page, 'admin');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
  await expect(page.getByRole('heading', { name: 'API keys' })).toBeVisible();
  await waitForHydration(page);

  await page.getByLabel('Name').fill('   ');
  await page.getByRole('button', { name: 'Create key' }).click();
  await expect(page.getByText('Give the key a name of 1 to 100 characters')).toBeVisible();
  await page.getByLabel('Name').fill('loyalty-platform');
  await page.getByRole('button', { name: 'Create key' }).click();
  const shown = page.getByLabel('New API key');
  await expect(shown).toBeVisible();
  const key = (await shown.textContent())!.trim();
  expect(key).toMatch(/^hk_/);
  const keyRow = page.getByRole('row').filter({ hasText: 'loyalty-platform' });
  await expect(keyRow.getByText(key.slice(0, 9))).toBeVisible();
  await expect(keyRow.getByText('Active')).toBeVisible();
  // The key works on the API until it is revoked.
  const ok = await request.get('/api/v1/webhooks', { headers: { authorization: `Bearer ${key}` } });
  expect(ok.status()).toBe(200);
  await snap(page, 'settings-keys');
  await keyRow.getByRole('button', { name: 'Revoke loyalty-platform' }).click();
  await expect(keyRow.getByText('Revoked')).toBeVisible();
  const refused = await request.get('/api/v1/webhooks', { headers: { authorization: `Bearer ${key}` } });
  expect(refused.status()).toBe(401);
  // The list never shows the key again.
  await page.reload();
  await expect(page.getByText(key)).toHaveCount(0);

  // An ingest-only key posts events and nothing else.
  await waitForHydration(page);
  await page.getByLabel('Name').fill('platform-ingest');
  await page.getByLabel('Scope').selectOption('ingest');
  await page.getByRole('button', { name: 'Create key' }).click();
  const ingestShown = page.getByLabel('New API key');
  await expect(ingestShown).toBeVisible();
  const ingestKey = (await ingestShown.textContent())!.trim();
  const ingestRow = page.getByRole('row').filter({ hasText: 'platform-ingest' });
  await expect(ingestRow.getByText('Ingest only')).toBeVisible();
  const posted = await request.post('/api/v1/events', {
    headers: { authorization: `Bearer ${ingestKey}` },
    data: { event_type: 'points.awarded', data: { points: 5 } },
  });
  expect(posted.status()).toBe(202);
  const listed = await request.get('/api/v1/webhooks', { headers: { authorization: `Bearer ${ingestKey}` } });
  expect(listed.status()).toBe(403);
  expect((await listed.json()).error.message).toContain('scope ingest');

  const users = page.getByRole('form', { name: 'Add a member' });
  await users.getByLabel('E-mail').fill('support@example.com');
  await users.getByLabel('Password').fill('short');
  await users.getByRole('button', { name: 'Add member' }).click();
  await expect(page.getByText('Password must be at least 10 characters')).toBeVisible();
  await users.getByLabel('Role').selectOption('viewer');
  await users.getByLabel('Password').fill('support team passphrase');
  await users.getByRole('button', { name: 'Add member' }).click();
  await expect(page.getByRole('row').filter({ hasText: 'support@example.com' })).toBeVisible();
  // Nobody removes their own account.
  const mine = page.getByRole('row').filter({ hasText: 'admin@example.com' });
  await expect(mine.getByText('You', { exact: true })).toBeVisible();
  await expect(mine.getByRole('button', { name: /Remove/ })).toHaveCount(0);

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Activity' }).click();
  await expect(page.getByRole('heading', { name: 'Activity', level: 1 })).toBeVisible();
  await expect(page.getByRole('row').filter({ hasText: 'user support@example.com' })).toBeVisible();
  await expect(page.getByRole('row').filter({ hasText: 'API key loyalty-platform' }).first()).toBeVisible();
  await snap(page, 'activity');
  // Refused form submissions answer 422, which the browser reports; nothing else may appear.
  expect(errors.filter((e) => !/status of 422/.test(e))).toEqual([]);
});
