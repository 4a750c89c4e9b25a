import { test, expect } from '@playwright/test';
import { signIn, api, waitForHydration, snap, collectConsoleErrors } from './helpers';

// Every test works as the admin (auth.spec.ts covers anonymous visitors and viewers).
test.beforeEach(async ({ page }) => {
  await signIn(page, 'admin');
});

test('the console renders on the server, hydrates its islands, and moves between pages', async ({ page }) => {
  const errors = collectConsoleErrors(page);
  const response = await page.goto('/');
  expect(response?.status()).toBe(200);
  // Server-rendered HTML already holds the page before any wasm runs.
  const html = await response!.text();
  expect(html).toContain('<h1>Webhooks</h1>');
  await waitForHydration(page);
  await expect(page.getByRole('heading', { name: 'Webhooks', level: 1 })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'No webhooks yet' })).toBeVisible();
  await snap(page, 'webhooks-empty');

  // Every screen is a page of its own, rendered by the server; the wasm wakes its islands.
  const nav = page.getByRole('navigation', { name: 'Main' });
  await nav.getByRole('link', { name: 'Audit Logs' }).click();
  await expect(page.getByRole('heading', { name: 'Audit Logs', level: 1 })).toBeVisible();
  await expect(page).toHaveURL(/\/audit-logs$/);
  await waitForHydration(page);
  await nav.getByRole('link', { name: 'Event Types' }).click();
  await expect(page.getByRole('heading', { name: 'Event Types', level: 1 })).toBeVisible();
  await expect(page.getByText('points.awarded', { exact: true })).toBeVisible();
  await waitForHydration(page);
  await snap(page, 'event-types');
  await nav.getByRole('link', { name: 'Settings' }).click();
  await expect(page.getByText('SQLite')).toBeVisible();
  await waitForHydration(page);
  await snap(page, 'settings');
  await nav.getByRole('link', { name: 'Webhooks' }).click();
  await expect(page.getByRole('heading', { name: 'Webhooks', level: 1 })).toBeVisible();
  await waitForHydration(page);
  expect(errors).toEqual([]);
});

test('unknown pages answer 404 with a helpful page', async ({ page }) => {
  const response = await page.goto('/no/such/page');
  expect(response?.status()).toBe(404);
  await expect(page.getByRole('heading', { name: 'Page not found' })).toBeVisible();
  await snap(page, 'not-found');
});

test('the frame fits a short window and a phone; old addresses lead into the program', async ({ page }) => {
  // A short window: the sidebar scrolls within itself, so what sits at its foot (signing out,
  // the version) stays within reach instead of spilling past its edge.
  await page.setViewportSize({ width: 1280, height: 400 });
  await page.goto('/');
  await waitForHydration(page);
  const sidebar = page.locator('.sidebar');
  for (const foot of [page.getByRole('button', { name: 'Sign out' }), sidebar.locator('.sidebar-foot')]) {
    await foot.scrollIntoViewIfNeeded();
    await expect(foot).toBeInViewport();
    const [box, frame] = [(await foot.boundingBox())!, (await sidebar.boundingBox())!];
    expect(box.y + box.height).toBeLessThanOrEqual(frame.y + frame.height);
  }
  // A phone: the navigation wraps instead of running off the right edge.
  await page.setViewportSize({ width: 390, height: 800 });
  await page.goto('/');
  const nav = page.getByRole('navigation', { name: 'Main' });
  for (const link of await nav.getByRole('link').all()) {
    const box = (await link.boundingBox())!;
    expect(box.x + box.width, await link.innerText()).toBeLessThanOrEqual(390);
  }
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  await snap(page, 'phone');
  // On a tablet the frame is a top bar: the user's line beside the brand and the program, the
  // navigation on a row of its own below them (not a third row under the navigation).
  await page.setViewportSize({ width: 768, height: 900 });
  await page.goto('/');
  const [brand, signOut, main] = [page.locator('.sidebar .brand'), page.getByRole('button', { name: 'Sign out' }),
    page.getByRole('navigation', { name: 'Main' })];
  const [brandBox, signOutBox, navBox] = [(await brand.boundingBox())!, (await signOut.boundingBox())!, (await main.boundingBox())!];
  expect(signOutBox.y).toBeLessThan(brandBox.y + brandBox.height);
  expect(signOutBox.y + signOutBox.height).toBeLessThanOrEqual(navBox.y);
  // The program menu opens over the page; the bar below it stays where it was.
  await page.locator('.program-switcher > summary').click();
  await expect(page.locator('.program-menu')).toBeVisible();
  expect((await main.boundingBox())!.y).toBe(navBox.y);
  await page.locator('.program-switcher > summary').click();
  await page.setViewportSize({ width: 390, height: 800 });
  // Every page keeps to the screen's width on a phone: wide tables scroll in their own box (the
  // seeded program's list carries flags, whose badges hold visually hidden text placed
  // absolutely: that text too stays inside), the wizard's steps stand one under another, and
  // headers, facts and two-column cards wrap.
  await page.goto('/programs');
  // Outside a program an install admin has no role there: the line says only what they are.
  await expect(page.locator('.user-role')).toHaveText('Install admin');
  await page.getByRole('link', { name: 'Seeded history' }).first().click();
  await expect(page.getByRole('heading', { name: 'Webhooks', level: 1 })).toBeVisible();
  const seeded = new URL(page.url()).pathname;
  const webhook = (await page.getByRole('table').getByRole('link', { name: 'Rewards fulfilment' }).getAttribute('href'))!;
  await page.goto(`${seeded}/audit-logs`);
  const attempt = (await page.getByRole('table').locator('a[href*="/audit-logs/"]').first().getAttribute('href'))!;
  const pages = ['/programs', seeded, `${seeded}/overview`, `${seeded}/audit-logs`, attempt, `${seeded}/deliveries`,
    `${seeded}/event-types`, `${seeded}/settings`, `${seeded}/activity`, `${seeded}/webhooks/new`, webhook, `${webhook}/edit`];
  for (const path of pages) {
    await page.goto(path);
    await waitForHydration(page);
    expect(await page.evaluate(() => document.documentElement.scrollWidth), path).toBeLessThanOrEqual(390);
  }
  // The wizard's last step with a custom header's row (a fieldset is never narrower than its
  // content unless told).
  await page.goto(`${seeded}/webhooks/new`);
  await waitForHydration(page);
  await page.getByLabel('Name').fill('Phone test');
  await page.getByLabel('URL').fill('https://example.com/hook');
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByRole('checkbox').nth(1).check();
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByRole('button', { name: 'Add header' }).click();
  await expect(page.getByPlaceholder('X-Tenant')).toBeVisible();
  expect(await page.evaluate(() => document.documentElement.scrollWidth), 'wizard step 3').toBeLessThanOrEqual(390);
  // `/webhooks` (and a program's `…/webhooks`) is the Webhooks list, not "Page not found".
  await page.setViewportSize({ width: 1280, height: 720 });
  await page.goto('/webhooks');
  await expect(page.getByRole('heading', { name: 'Webhooks', level: 1 })).toBeVisible();
  await page.goto(`${new URL(page.url()).pathname}/webhooks`);
  await expect(page.getByRole('heading', { name: 'Webhooks', level: 1 })).toBeVisible();
  // A webhook's last-result tiles hold their dates inside, wrapping them where they are long.
  await page.goto(webhook);
  const tiles = page.locator('.stats.compact .stat');
  await expect(tiles.first()).toBeVisible();
  for (const tile of await tiles.all()) {
    const [outer, value] = [(await tile.boundingBox())!, (await tile.locator('.stat-value').boundingBox())!];
    expect(value.x + value.width, await tile.innerText()).toBeLessThanOrEqual(outer.x + outer.width - 8);
  }
});

test('the Webhooks page shows what the database holds, and filters by name', async ({ page, request }) => {
  for (const name of ['Tier Sync', 'Rewards Feed']) {
    const created = await api(request, 'POST', '/api/v1/webhooks', {
      name,
      url: 'https://example.com/hooks',
      event_types: ['points.awarded', 'member.tier_changed'],
    });
    expect(created.status()).toBe(201);
  }
  await page.goto('/');
  await waitForHydration(page);
  const table = page.getByRole('table');
  await expect(table.getByRole('rowheader', { name: 'Tier Sync' })).toBeVisible();
  await expect(table.getByRole('rowheader', { name: 'Rewards Feed' })).toBeVisible();
  await expect(table.getByRole('row', { name: /Tier Sync/ }).getByText('Active')).toBeVisible();
  await snap(page, 'webhooks-list');
  // At a laptop's width (Playwright's 1280 px) the Enabled switch and the actions are in view
  // without scrolling the table: they stay at its right edge while wider columns scroll under
  // them (the twelve columns are wider than the page there).
  const row = table.getByRole('row', { name: /Tier Sync/ });
  const width = page.viewportSize()!.width;
  expect(width).toBeLessThanOrEqual(1280);
  for (const control of [row.getByRole('switch'), row.getByRole('link', { name: 'Send Test' }), row.getByText('Delete', { exact: true })]) {
    const box = (await control.boundingBox())!;
    expect(box.x + box.width, await control.textContent() ?? 'control').toBeLessThanOrEqual(width);
  }

  await page.getByLabel('Name').fill('tier');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page).toHaveURL(/name=tier/);
  await expect(table.getByRole('rowheader', { name: 'Tier Sync' })).toBeVisible();
  await expect(table.getByRole('rowheader', { name: 'Rewards Feed' })).toHaveCount(0);

  // The filter lives in the URL: a reload shows the same view.
  await page.reload();
  await waitForHydration(page);
  await expect(page.getByLabel('Name')).toHaveValue('tier');
  await expect(page.getByRole('rowheader', { name: 'Rewards Feed' })).toHaveCount(0);
});

test('the Enabled switch takes effect at once and survives reload', async ({ page, request }) => {
  const created = await api(request, 'POST', '/api/v1/webhooks', {
    name: 'Toggle Me',
    url: 'https://example.com/toggle',
    event_types: ['reward.redeemed'],
  });
  expect(created.status()).toBe(201);
  await page.goto('/?name=Toggle');
  await waitForHydration(page);
  const toggle = page.getByRole('switch', { name: 'Enabled: Toggle Me' });
  await expect(toggle).toHaveAttribute('aria-checked', 'true');
  await toggle.click();
  await expect(page.getByRole('switch', { name: 'Enabled: Toggle Me' })).toHaveAttribute('aria-checked', 'false');
  await expect(page.getByRole('row', { name: /Toggle Me/ }).getByText('Inactive')).toBeVisible();
  await page.reload();
  await expect(page.getByRole('switch', { name: 'Enabled: Toggle Me' })).toHaveAttribute('aria-checked', 'false');
});

test('the Webhooks list comes a page at a time, newest first', async ({ page }) => {
  const errors = collectConsoleErrors(page);
  await page.goto('/');
  await waitForHydration(page);
  const switcher = page.locator('details.program-switcher');
  await switcher.locator('summary').click();
  await switcher.getByRole('link', { name: /Many webhooks/ }).click();
  await expect(switcher.locator('.program-name')).toHaveText('Many webhooks');
  const table = page.getByRole('table');
  // 53 webhooks ("Scale 00000" to "Scale 00052"): 50 on the first page, the newest first.
  await expect(table.getByRole('rowheader', { name: 'Scale 00052' })).toBeVisible();
  await expect(table.locator('tbody tr')).toHaveCount(50);
  await expect(table.getByRole('rowheader', { name: 'Scale 00002' })).toHaveCount(0);
  const pages = page.getByRole('navigation', { name: 'Pages' });
  await expect(pages.getByRole('link', { name: 'First page' })).toHaveCount(0);
  await pages.getByRole('link', { name: 'Next' }).click();
  await expect(page).toHaveURL(/cursor=/);
  await expect(table.locator('tbody tr')).toHaveCount(3);
  await expect(table.getByRole('rowheader', { name: 'Scale 00000' })).toBeVisible();
  await expect(pages.getByRole('link', { name: 'Next' })).toHaveCount(0);
  await pages.getByRole('link', { name: 'First page' }).click();
  await expect(table.locator('tbody tr')).toHaveCount(50);
  expect(errors).toEqual([]);
});

test('a Delete confirmation on the last rows of a short list is shown whole', async ({ page }) => {
  // The table's box scrolls sideways and so clips what hangs below it: with a few webhooks,
  // the last rows' confirmations were cut off, their button out of sight.
  await page.goto('/programs');
  await page.getByRole('link', { name: 'Seeded history' }).first().click();
  await expect(page.getByRole('heading', { name: 'Webhooks', level: 1 })).toBeVisible();
  await waitForHydration(page);
  const rows = page.getByRole('table').locator('tbody tr');
  const wrap = page.locator('.table-wrap').first();
  for (const row of [rows.last(), rows.nth(0)]) {
    await row.getByText('Delete', { exact: true }).click();
    const confirm = row.getByRole('button', { name: /^Delete / });
    await expect(confirm).toBeVisible();
    const [button, box] = [(await confirm.boundingBox())!, (await wrap.boundingBox())!];
    expect(button.y + button.height).toBeLessThanOrEqual(box.y + box.height);
    expect(await wrap.evaluate((e) => e.scrollHeight - e.clientHeight)).toBeLessThanOrEqual(0);
    await row.getByText('Delete', { exact: true }).click();
    await expect(confirm).toBeHidden();
  }
  await expect(rows).toHaveCount(4);
});
