import { test, expect } from '@playwright/test';
import { signIn, waitForHydration, snap, collectConsoleErrors } from './helpers';

// Before the server starts, `herald seed --program "Seeded history"` fills a program of its own
// with a week of history made by the real engine (playwright.config.ts): six ordinary days, a
// quiet one, then two hours in which "Points CRM" fails, tier changes stop and one reward arrives
// with a payload far larger than usual. "Loyalty ledger" stays healthy.
test('flags: badges in the list, sentences on the webhook page and the overview, for the webhooks in trouble only', async ({ page }) => {
  const errors = collectConsoleErrors(page);
  await signIn(page, 'admin');
  await waitForHydration(page);
  const switcher = page.locator('details.program-switcher');
  await switcher.locator('summary').click();
  await switcher.getByRole('link', { name: /Seeded history/ }).click();
  await expect(switcher.locator('.program-name')).toHaveText('Seeded history');

  const row = (name: string) => page.getByRole('row').filter({ hasText: name });
  await expect(row('Points CRM').locator('.flag')).toHaveCount(1);
  await expect(row('Points CRM').locator('.flag')).toContainText('Failing more');
  await expect(row('Tier sync').locator('.flag')).toContainText('Gone silent');
  await expect(row('Rewards fulfilment').locator('.flag')).toContainText('Unusual payload');
  await expect(row('Loyalty ledger')).toBeVisible();
  await expect(row('Loyalty ledger').locator('.flag')).toHaveCount(0);
  // The badge carries its sentence for a hover and for screen readers.
  await expect(row('Points CRM').locator('.flag')).toHaveAttribute('title', /^Failing more than usual: 100% of 25 attempts failed/);
  await snap(page, 'flags-list');

  // The webhook's page says it in a sentence.
  await row('Points CRM').getByRole('link', { name: 'Points CRM' }).first().click();
  await expect(page.getByRole('heading', { name: /Points CRM/, level: 1 })).toBeVisible();
  const notes = page.getByRole('region', { name: 'Flags' });
  await expect(notes).toContainText('Failing more than usual: 100% of 25 attempts failed');
  await expect(notes).toContainText('against 0.0% over the 7 days before');
  await snap(page, 'flags-webhook');

  // The overview lists every flag of the program, by webhook.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).click();
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
  const all = page.getByRole('region', { name: 'Flags' });
  await expect(all.locator('li')).toHaveCount(3);
  await expect(all).toContainText('Tier sync: Gone silent: no deliveries for');
  await expect(all).toContainText('Rewards fulfilment: Unusual payloads: a reward.redeemed event of');
  await snap(page, 'flags-overview');
  expect(errors).toEqual([]);
});

test('the audit log finds what was sent about one member', async ({ page }) => {
  const errors = collectConsoleErrors(page);
  await signIn(page, 'admin');
  await page.goto('/programs');
  await page.getByRole('link', { name: 'Seeded history' }).first().click();
  await expect(page.getByRole('heading', { name: 'Webhooks', level: 1 })).toBeVisible();
  const seeded = new URL(page.url()).pathname;
  await page.goto(`${seeded}/audit-logs`);
  await waitForHydration(page);
  const search = page.getByLabel('Search');
  await expect(search).toHaveAttribute('placeholder', 'Event ID, member ID or webhook name');
  await search.fill('m_3');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page).toHaveURL(/[?&]q=m_3(&|$)/);
  const rows = page.getByRole('table').locator('tbody tr');
  await expect(rows.first()).toBeVisible();
  // Each row is an attempt of an event about m_3: the row names the member, and the request
  // and the attempt's facts say so.
  const count = await rows.count();
  await expect(rows.getByRole('link', { name: 'member m_3' })).toHaveCount(count);
  for (const i of [0, count - 1]) {
    await page.goto((await rows.nth(i).locator('a[href*="/audit-logs/"]').first().getAttribute('href'))!);
    await expect(page.getByText(/"member_id": "m_3",/).first()).toBeVisible();
    await expect(page.locator('dl.facts dt', { hasText: 'Member' })).toHaveCount(1);
    await page.goBack();
  }
  await page.goto(`${seeded}/audit-logs?q=m_30`);
  await expect(page.getByText('No attempts to show')).toBeVisible();
  // The unfiltered log names each row's member: one click shows everything about them.
  await page.goto(`${seeded}/audit-logs`);
  await page.getByRole('link', { name: /^member m_/ }).first().click();
  await expect(page).toHaveURL(/[?&]q=m_\d+$/);
  await expect(rows.first()).toBeVisible();
  expect(errors).toEqual([]);
});
