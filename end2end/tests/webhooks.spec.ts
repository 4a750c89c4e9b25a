import { test, expect } from '@playwright/test';
import { signIn, waitForHydration, snap, collectConsoleErrors } from './helpers';
import { Receiver } from './receiver';
import * as fs from 'node:fs';

// Every test works as the admin (auth.spec.ts covers anonymous visitors and viewers).
test.beforeEach(async ({ page }) => {
  await signIn(page, 'admin');
});

test('create a webhook through the wizard, test it, find it in the audit log, edit, toggle and delete it', async ({ page }) => {
  const errors = collectConsoleErrors(page);
  const receiver = new Receiver();
  const url = await receiver.start();
  try {
    await page.goto('/');
    await waitForHydration(page);
    await page.getByRole('link', { name: 'Create Webhook' }).first().click();
    await expect(page.getByRole('heading', { name: 'Create Webhook', level: 1 })).toBeVisible();
    await expect(page.getByRole('heading', { name: 'Endpoint Details' })).toBeVisible();

    // Step 1: a validation error first, then fixed; Verify before saving.
    await page.getByRole('button', { name: 'Next' }).click();
    await expect(page.getByText('Name is required')).toBeVisible();
    await page.getByLabel('Name').fill('Loyalty CRM');
    await page.getByLabel('URL').fill('ftp://nope');
    await page.getByRole('button', { name: 'Next' }).click();
    await expect(page.getByText('URL must start with http:// or https://')).toBeVisible();
    await page.getByLabel('URL').fill(url);
    await page.getByLabel('Description').fill('Pushes tier changes to the CRM');
    await page.getByRole('button', { name: 'Verify' }).click();
    await expect(page.getByText('Verified')).toBeVisible();
    expect(receiver.received.length).toBe(1);
    expect(JSON.parse(receiver.received[0].body).event_type).toBe('webhook.verification');
    expect(receiver.received[0].headers['webhook-signature']).toMatch(/^v1,/);
    await snap(page, 'wizard-step1');
    await page.getByRole('button', { name: 'Next' }).click();

    // Step 2: nothing selected is refused; then pick events from two feeds.
    await expect(page.getByRole('heading', { name: 'Event Subscriptions' })).toBeVisible();
    await page.getByRole('button', { name: 'Next' }).click();
    await expect(page.getByText('Select at least one event')).toBeVisible();
    await page.getByLabel('Feed Type').selectOption({ label: 'Member' });
    await page.getByRole('checkbox', { name: /member\.tier_changed/ }).check();
    await page.getByLabel('Feed Type').selectOption({ label: 'Points' });
    await page.getByRole('checkbox', { name: 'Select all' }).check();
    await expect(page.getByRole('checkbox', { name: /points\.awarded/ })).toBeChecked();
    await snap(page, 'wizard-step2');
    await page.getByRole('button', { name: 'Next' }).click();

    // Step 3: an out-of-range timeout is refused at Save, then fixed.
    await expect(page.getByRole('heading', { name: 'Securities & Retries' })).toBeVisible();
    await page.getByLabel('Request Timeout (seconds)').fill('99');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect(page.getByText('Request Timeout must be between 1 and 60')).toBeVisible();
    await page.getByLabel('Request Timeout (seconds)').fill('5');
    await page.getByLabel('Retry Attempts').fill('2');
    // Custom headers: one Herald sets is refused by name; a plain and a secret one are kept.
    await page.getByRole('button', { name: 'Add header' }).click();
    await page.getByLabel('Header 1 name').fill('Host');
    await page.getByLabel('Header 1 value').fill('evil.example');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect(page.getByText("Header 'Host' is set by Herald or by HTTP itself and cannot be replaced")).toBeVisible();
    await page.getByLabel('Header 1 name').fill('X-Tenant');
    await page.getByLabel('Header 1 value').fill('acme');
    await page.getByRole('button', { name: 'Add header' }).click();
    await page.getByLabel('Header 2 name').fill('X-Api-Token');
    await page.getByRole('checkbox', { name: 'Secret' }).nth(1).check();
    await expect(page.getByLabel('Header 2 value')).toHaveAttribute('type', 'password');
    await page.getByLabel('Header 2 value').fill('tok-e2e-123');
    // Per-member ordering: a path into the event, refused beside the field when malformed.
    await page.getByLabel('Ordering Key (optional)').fill('data..member_id');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect(page.getByText('Ordering key must be a dot-separated path such as data.member_id')).toBeVisible();
    await page.getByLabel('Ordering Key (optional)').fill('data.member_id');
    await snap(page, 'wizard-step3');
    await page.getByRole('button', { name: 'Save' }).click();

    // The secret is shown once.
    await expect(page.getByText('Webhook “Loyalty CRM” saved')).toBeVisible();
    await expect(page.getByLabel('Signing secret')).toContainText('whsec_');
    // And how to check its requests, in the method it uses (Python first).
    await expect(page.getByRole('heading', { name: 'Check its requests' })).toBeVisible();
    await expect(page.locator('details.snippet[open] pre')).toContainText('webhook-signature');
    await snap(page, 'wizard-saved');

    // The list shows it.
    await page.getByRole('link', { name: 'Back to Webhooks' }).click();
    const row = page.getByRole('row', { name: /Loyalty CRM/ });
    await expect(row).toBeVisible();
    await expect(row.getByText('Active')).toBeVisible();

    // Send Test from the list: the result shows inline, in the same view.
    await row.getByRole('link', { name: 'Send Test' }).click();
    const dialog = page.getByRole('dialog', { name: 'Send Test: Loyalty CRM' });
    await expect(dialog).toBeVisible();
    await expect(dialog.getByRole('button', { name: 'Close' })).toBeFocused();
    await dialog.getByLabel('Event Type').selectOption('points.awarded');
    await dialog.getByRole('button', { name: 'Send Test' }).click();
    await expect(dialog.getByText('Success')).toBeVisible();
    await expect(dialog.getByText('200', { exact: true })).toBeVisible();
    await expect(dialog.getByText('{"received":true}')).toBeVisible();
    await snap(page, 'send-test');
    expect(JSON.parse(receiver.received[1].body).event_type).toBe('points.awarded');
    expect(receiver.received[1].headers['x-tenant']).toBe('acme');
    expect(receiver.received[1].headers['x-api-token']).toBe('tok-e2e-123');
    await dialog.getByRole('link', { name: 'View in Audit Logs' }).click();
    await expect(page.getByRole('heading', { name: /Loyalty CRM/, level: 1 })).toBeVisible();
    await expect(page.getByText('Trigger')).toBeVisible();
    await expect(page.getByText('webhook-signature: v1,')).toBeVisible();
    await expect(page.getByText('x-api-token: [redacted]')).toBeVisible();
    await snap(page, 'attempt-detail');

    // The audit log filters by webhook and date.
    await page.goto('/audit-logs');
    await waitForHydration(page);
    const today = new Date().toISOString().slice(0, 10);
    await page.getByLabel('Start Date').fill(today);
    await page.getByLabel('End Date').fill(today);
    await page.getByLabel('Select Webhook').selectOption({ label: 'Loyalty CRM' });
    await page.getByRole('button', { name: 'Search' }).click();
    await expect(page).toHaveURL(/webhook_id=wh_/);
    await expect(page.getByRole('rowheader', { name: 'Loyalty CRM' })).toHaveCount(1);
    await snap(page, 'audit-logs');
    // Download CSV keeps the filters; the file holds the row the page shows.
    const csvLink = page.getByRole('link', { name: 'Download CSV' });
    await expect(csvLink).toHaveAttribute('href', /\/audit-logs\.csv\?webhook_id=wh_\w+&start=\d{4}-\d{2}-\d{2}&end=\d{4}-\d{2}-\d{2}$/);
    const [download] = await Promise.all([page.waitForEvent('download'), csvLink.click()]);
    expect(download.suggestedFilename()).toMatch(/^herald-audit-log-\d{4}-\d{2}-\d{2}\.csv$/);
    const csv = fs.readFileSync(await download.path(), 'utf8').trim().split('\r\n');
    expect(csv[0]).toMatch(/^attempt_id,created_at,webhook_name,/);
    expect(csv).toHaveLength(2);
    expect(csv[1]).toContain(',Loyalty CRM,');
    await page.getByLabel('Start Date').fill('2001-01-01');
    await page.getByLabel('End Date').fill('2001-01-02');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect(page.getByText('No attempts to show')).toBeVisible();

    // Toggle Enabled off from the list.
    await page.goto('/');
    await waitForHydration(page);
    await page.getByRole('switch', { name: 'Enabled: Loyalty CRM' }).click();
    await expect(page.getByRole('row', { name: /Loyalty CRM/ }).getByText('Inactive')).toBeVisible();

    // Edit: the same wizard, filled in.
    await page.getByRole('row', { name: /Loyalty CRM/ }).getByRole('link', { name: 'Edit' }).click();
    await expect(page.getByLabel('Name')).toHaveValue('Loyalty CRM');
    await page.getByLabel('Name').fill('Loyalty CRM v2');
    await page.getByRole('button', { name: 'Next' }).click();
    await expect(page.getByRole('checkbox', { name: /member\.tier_changed/ })).toHaveCount(0);
    await page.getByLabel('Feed Type').selectOption({ label: 'Member' });
    await expect(page.getByRole('checkbox', { name: /member\.tier_changed/ })).toBeChecked();
    await page.getByRole('button', { name: 'Next' }).click();
    await expect(page.getByLabel('Request Timeout (seconds)')).toHaveValue('5');
    // The secret header's value is not sent to the browser: left empty, it is kept.
    await expect(page.getByLabel('Header 1 value')).toHaveValue('acme');
    await expect(page.getByLabel('Header 2 value')).toHaveValue('');
    await expect(page.getByLabel('Header 2 value')).toHaveAttribute('placeholder', '(unchanged)');
    await expect(page.getByLabel('Ordering Key (optional)')).toHaveValue('data.member_id');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect(page.getByRole('heading', { name: /Loyalty CRM v2/, level: 1 })).toBeVisible();
    await snap(page, 'webhook-page');

    // Delete, with a confirmation naming the webhook.
    await page.goto('/');
    await waitForHydration(page);
    const v2 = page.getByRole('row', { name: /Loyalty CRM v2/ });
    await v2.getByText('Delete', { exact: true }).click();
    await v2.getByRole('button', { name: 'Delete Loyalty CRM v2' }).click();
    await expect(page.getByRole('row', { name: /Loyalty CRM v2/ })).toHaveCount(0);
    // Its audit rows stay, with the name it had.
    await page.goto('/audit-logs?q=Loyalty');
    await expect(page.getByRole('rowheader', { name: 'Loyalty CRM' }).first()).toBeVisible();
    expect(errors).toEqual([]);
  } finally {
    await receiver.stop();
  }
});

test('a duplicate name is refused on the first step', async ({ page, request }) => {
  const { api } = await import('./helpers');
  const made = await api(request, 'POST', '/api/v1/webhooks', {
    name: 'Taken Name',
    url: 'https://example.com/x',
    event_types: ['user.created'],
  });
  expect(made.status()).toBe(201);
  await page.goto('/webhooks/new');
  await waitForHydration(page);
  await page.getByLabel('Name').fill('taken name');
  await page.getByLabel('URL').fill('https://example.com/y');
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page.getByText('A webhook with this name already exists')).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Endpoint Details' })).toBeVisible();
});

test('the wizard refuses a URL in the browser as the server does', async ({ page, request }) => {
  const { api } = await import('./helpers');
  // The console's wasm reads URLs with the browser's parser, the server with the url crate: the
  // same standard, the same message.
  const cases: [string, RegExp][] = [
    ['not a url', /URL is not a valid absolute URL/],
    ['https://user:pw@example.com/x', /URL must not contain credentials/],
    ['https://example.com/x#a', /URL must not contain a #fragment/],
    ['https://example.com/x#', /URL must not contain a #fragment/],
    ['mailto:ops@example.com', /URL must start with http:\/\/ or https:\/\//],
  ];
  await page.goto('/webhooks/new');
  await waitForHydration(page);
  await page.getByLabel('Name').fill('URL check');
  for (const [url, message] of cases) {
    await page.getByLabel('URL').fill(url);
    await page.getByRole('button', { name: 'Next' }).click();
    await expect(page.getByText(message)).toBeVisible();
    const refused = await api(request, 'POST', '/api/v1/webhooks', { name: 'URL check', url, event_types: ['user.created'] });
    expect(refused.status()).toBe(422);
    expect((await refused.json()).error.message).toMatch(message);
  }
  await expect(page.getByRole('heading', { name: 'Endpoint Details' })).toBeVisible();
});
