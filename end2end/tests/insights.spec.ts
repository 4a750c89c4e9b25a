import { test, expect } from '@playwright/test';
import { api, signIn, waitForHydration, snap, collectConsoleErrors } from './helpers';
import { Receiver } from './receiver';

test('the overview and a webhook page chart real deliveries, with tables and window tabs, readable before the wasm loads', async ({ page, request, browser }) => {
  const errors = collectConsoleErrors(page);
  const receiver = new Receiver();
  const url = await receiver.start();
  try {
    const created = await api(request, 'POST', '/api/v1/webhooks', {
      name: 'Charted CRM',
      url,
      event_types: ['points.awarded'],
    });
    expect(created.status()).toBe(201);
    const hook = await created.json();
    for (let i = 0; i < 5; i++) {
      const posted = await api(request, 'POST', '/api/v1/events', { event_type: 'points.awarded', data: { user_id: `u${i}`, points: 10 } });
      expect(posted.status()).toBe(202);
    }
    await expect.poll(() => receiver.received.length).toBeGreaterThanOrEqual(5);
    // The figures are written with the results: the list shows them once recorded.
    await expect
      .poll(async () => {
        const listed = await (await api(request, 'GET', '/api/v1/webhooks?name=Charted')).json();
        return listed.items[0]?.figures?.succeeded;
      })
      .toBe(5);

    await signIn(page, 'admin');
    await waitForHydration(page);
    // The list: figures of the window, its tabs.
    const row = page.getByRole('row').filter({ hasText: 'Charted CRM' });
    await expect(row.getByRole('cell', { name: '100.0%' })).toBeVisible();
    await expect(page.getByRole('navigation', { name: 'Time window' }).getByRole('link', { name: '24 hours' })).toHaveAttribute('aria-current', 'page');

    // The overview: tiles, both charts with accessible names, the table behind a chart.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).click();
    await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
    const deliveries = page.getByRole('img', { name: 'Attempts per hour, last 24 hours, by outcome' });
    await expect(deliveries).toBeVisible();
    await expect(deliveries.locator('rect.bar-ok')).toHaveCount(1);
    await expect(page.getByRole('img', { name: 'Latency p50 and p95 per hour, last 24 hours' })).toBeVisible();
    await page.getByText('Attempts by outcome as a table').click();
    const table = page.locator('details.chart-table').first().locator('table');
    await expect(table.locator('tbody tr')).toHaveCount(24);
    await expect(table.getByRole('cell', { name: '5', exact: true })).toHaveCount(1);
    await expect(page.getByRole('row').filter({ hasText: 'Charted CRM' })).toBeVisible();
    await snap(page, 'overview');

    // Seven days: six-hour bars; the URL carries the window.
    await page.getByRole('navigation', { name: 'Time window' }).getByRole('link', { name: '7 days' }).click();
    await expect(page).toHaveURL(/window=7d/);
    await expect(page.getByRole('img', { name: 'Attempts per 6 hours, last 7 days, by outcome' })).toBeVisible();

    // The webhook's own page.
    await page.goto(`${new URL(page.url()).pathname.replace(/\/overview$/, '')}/webhooks/${hook.id}`);
    await expect(page.getByRole('heading', { name: /Charted CRM/, level: 1 })).toBeVisible();
    await expect(page.getByRole('img', { name: 'Attempts per hour, last 24 hours, by outcome' })).toBeVisible();
    await expect(page.getByRole('region', { name: 'Figures' }).getByText('100.0%')).toBeVisible();
    await snap(page, 'webhook-insights');

    // Without JavaScript the charts are there all the same (drawn by the server).
    const plain = await browser.newContext({ javaScriptEnabled: false, storageState: await page.context().storageState() });
    const noJs = await plain.newPage();
    await noJs.goto(page.url());
    await expect(noJs.getByRole('img', { name: 'Attempts per hour, last 24 hours, by outcome' })).toBeVisible();
    await expect(noJs.locator('svg.chart rect.bar-ok')).toHaveCount(1);
    await plain.close();
    expect(errors).toEqual([]);
    // Leave the program as the other specs expect it (no webhooks).
    expect((await api(request, 'DELETE', `/api/v1/webhooks/${hook.id}`)).status()).toBe(204);
  } finally {
    await receiver.stop();
  }
});

test('an admin turns on schema validation for one event type on the Event Types page; ingest then names the failing path', async ({ page, request }) => {
  const errors = collectConsoleErrors(page);
  const bad = { event_type: 'points.awarded', data: { user_id: 'u1', points: 'many', reason: 'x', balance: 1 } };
  await signIn(page, 'admin');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Event Types' }).click();
  await expect(page.getByRole('heading', { name: 'Event Types', level: 1 })).toBeVisible();
  await waitForHydration(page);
  const points = page.locator('details').filter({ has: page.getByText('points.awarded', { exact: true }) });
  await points.locator('summary').click();
  await points.getByRole('button', { name: 'Validate points.awarded data at ingest' }).click();
  await expect(points.getByText('Validated at ingest')).toBeVisible();
  await snap(page, 'event-types-validation');

  const refused = await api(request, 'POST', '/api/v1/events', bad);
  expect(refused.status()).toBe(422);
  expect((await refused.json()).error.field).toBe('data.points');

  await points.getByRole('button', { name: 'Stop validating points.awarded' }).click();
  await expect(points.getByText('Validated at ingest')).toHaveCount(0);
  expect((await api(request, 'POST', '/api/v1/events', bad)).status()).toBe(202);
  expect(errors).toEqual([]);
});
