// Runs after insights.spec.ts (alphabetical order): the Overview there counts every delivery of the program.
import { test, expect, Page } from '@playwright/test';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import * as fs from 'node:fs';
import { api, signIn, waitForHydration, snap, collectConsoleErrors } from './helpers';

/** A receiver that answers 503 until told to recover. */
class Flaky {
  healthy = false;
  hits = 0;
  private server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      this.hits += 1;
      res.statusCode = this.healthy ? 200 : 503;
      res.end();
    });
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
  }

  async stop() {
    // Herald keeps connections alive for reuse; close them too, or close() waits on them.
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }
}

/** Counts the page's running intervals (from its first script on), for `runningIntervals`. */
async function countIntervals(page: Page) {
  await page.addInitScript(() => {
    const w = window as unknown as { __intervals: Set<number> };
    w.__intervals = new Set();
    const set = window.setInterval.bind(window);
    const clear = window.clearInterval.bind(window);
    window.setInterval = ((handler: TimerHandler, ms?: number, ...args: unknown[]) => {
      const id = set(handler, ms, ...args);
      w.__intervals.add(id);
      return id;
    }) as typeof window.setInterval;
    window.clearInterval = (id?: number) => {
      if (id !== undefined) w.__intervals.delete(id);
      clear(id);
    };
  });
}

async function runningIntervals(page: Page): Promise<number> {
  return page.evaluate(() => (window as unknown as { __intervals: Set<number> }).__intervals.size);
}

test('dead letters are listed on the Deliveries page and replayed in bulk with a progress bar', async ({ page, request }) => {
  const errors = collectConsoleErrors(page);
  await countIntervals(page);
  const flaky = new Flaky();
  const url = await flaky.start();
  let id = '';
  try {
    const created = await api(request, 'POST', '/api/v1/webhooks', {
      name: 'Flaky CRM',
      url,
      event_types: ['points.awarded'],
      retry: { attempts: 0, delay_seconds: 1, backoff: 'fixed', timeout_seconds: 5 },
    });
    expect(created.status()).toBe(201);
    id = (await created.json()).id;
    for (let i = 0; i < 3; i++) {
      expect((await api(request, 'POST', '/api/v1/events', { event_type: 'points.awarded', data: { user_id: `u${i}`, points: 1 } })).status()).toBe(202);
    }
    await expect
      .poll(async () => (await (await api(request, 'GET', `/api/v1/deliveries?status=failed&webhook_id=${id}`)).json()).items.length)
      .toBe(3);

    await signIn(page, 'admin');
    await waitForHydration(page);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Deliveries' }).click();
    await expect(page.getByRole('heading', { name: 'Deliveries', level: 1 })).toBeVisible();
    await page.getByLabel('Select Webhook').selectOption({ label: 'Flaky CRM' });
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect(page).toHaveURL(/webhook_id=wh_/);
    const rows = page.getByRole('row').filter({ hasText: 'Flaky CRM' });
    await expect(rows).toHaveCount(3);
    await expect(rows.first().getByRole('cell', { name: 'HTTP 503' })).toBeVisible();
    // The table fits a laptop's width (Playwright's 1280 px): each row's Replay is in view.
    const replayOne = (await rows.first().getByRole('button', { name: /Replay/ }).boundingBox())!;
    expect(replayOne.x + replayOne.width).toBeLessThanOrEqual(page.viewportSize()!.width);
    // Download CSV gives the dead letters shown, with the filter.
    const csvLink = page.getByRole('link', { name: 'Download CSV' });
    await expect(csvLink).toHaveAttribute('href', /\/deliveries\.csv\?status=failed&webhook_id=wh_\w+$/);
    const [download] = await Promise.all([page.waitForEvent('download'), csvLink.click()]);
    expect(download.suggestedFilename()).toMatch(/^herald-deliveries-\d{4}-\d{2}-\d{2}\.csv$/);
    const csv = fs.readFileSync(await download.path(), 'utf8').trim().split('\r\n');
    expect(csv[0]).toMatch(/^delivery_id,accepted_at,webhook_name,/);
    expect(csv).toHaveLength(4);
    expect(csv.slice(1).every((row) => row.includes(',Flaky CRM,') && row.includes(',failed,false,') && row.endsWith(',HTTP 503'))).toBe(true);

    // One dead letter replayed from its attempt's page: the message comes back with the page, and
    // the receiver, still failing, sends it back among the dead letters.
    const deliveriesUrl = page.url();
    await page.goto(deliveriesUrl.replace(/\/deliveries\?.*$/, `/audit-logs?webhook_id=${id}`));
    await page.getByRole('row').filter({ hasText: 'Flaky CRM' }).first().getByTitle('Open the request and response').click();
    await expect(page.getByRole('heading', { name: /Flaky CRM/, level: 1 })).toBeVisible();
    await waitForHydration(page);
    await page.getByRole('button', { name: 'Replay', exact: true }).click();
    await expect(page.getByText('Queued again with a fresh retry budget')).toBeVisible();
    await expect.poll(() => flaky.hits).toBe(4);
    await expect.poll(async () => (await (await api(request, 'GET', `/api/v1/deliveries?status=failed&webhook_id=${id}`)).json()).items.length).toBe(3);
    await page.goto(deliveriesUrl);
    await waitForHydration(page);

    flaky.healthy = true;
    await page.getByRole('button', { name: 'Replay all matching' }).click();
    await expect(page.getByText('Done: 3 of 3 dead letters back in the queue')).toBeVisible();
    await expect(page.getByRole('progressbar', { name: 'Bulk replay progress' })).toHaveAttribute('value', '3');
    await snap(page, 'deliveries-bulk-replay');
    // Starting again swaps the page's content in place, with a new progress island: the one it
    // replaced is disposed, so its once-a-second timer stops (it ran on, detached, before). Once
    // for an island the page loaded with, once for one an earlier swap woke.
    await page.reload();
    await waitForHydration(page);
    const running = await runningIntervals(page);
    expect(running).toBeGreaterThan(0);
    for (const woken of ['on load', 'by a swap']) {
      await page.evaluate(() => {
        document.querySelector('h1')!.setAttribute('data-replaced', '');
        (window as unknown as { __samePage: boolean }).__samePage = true;
      });
      await page.getByRole('button', { name: 'Replay all matching' }).click();
      await expect(page.locator('h1:not([data-replaced])')).toBeVisible();
      expect(await page.evaluate(() => (window as unknown as { __samePage?: boolean }).__samePage), 'swapped in place, not loaded again').toBe(true);
      expect(await runningIntervals(page), `the island woken ${woken} is disposed`).toBe(running);
    }
    await expect.poll(() => flaky.hits).toBe(7);
    await expect.poll(async () => (await (await api(request, 'GET', `/api/v1/deliveries?status=failed&webhook_id=${id}`)).json()).items.length).toBe(0);
    await page.reload();
    await expect(page.getByRole('heading', { name: 'No dead letters' })).toBeVisible();

    // Other statuses: the three are delivered now; one accepted while the webhook is off waits, held.
    await waitForHydration(page);
    await page.getByLabel('Status').selectOption({ label: 'Delivered' });
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect(page).toHaveURL(/status=succeeded/);
    await expect(rows).toHaveCount(3);
    await expect(rows.first().getByRole('cell', { name: 'Delivered', exact: true })).toBeVisible();
    expect((await api(request, 'PATCH', `/api/v1/webhooks/${id}`, { enabled: false })).status()).toBe(200);
    expect((await api(request, 'POST', '/api/v1/events', { event_type: 'points.awarded', data: { user_id: 'u9', points: 1 } })).status()).toBe(202);
    await page.getByLabel('Status').selectOption({ label: 'Waiting (retries, held)' });
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect(page).toHaveURL(/status=pending/);
    await expect(rows).toHaveCount(1);
    await expect(rows.getByRole('cell', { name: 'Held (webhook off)' })).toBeVisible();
    await expect(rows.getByRole('button')).toHaveCount(0);
    await snap(page, 'deliveries-held');
    expect(errors).toEqual([]);
  } finally {
    if (id) expect((await api(request, 'DELETE', `/api/v1/webhooks/${id}`)).status()).toBe(204);
    await flaky.stop();
  }
});
