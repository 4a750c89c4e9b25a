import { test, expect } from '@playwright/test';
import * as net from 'node:net';
import { api, signIn, waitForHydration, snap, collectConsoleErrors } from './helpers';
import { Receiver } from './receiver';

/** A real SMTP server on 127.0.0.1 that accepts every message and keeps its subject. */
class SmtpSink {
  subjects: string[] = [];
  private server = net.createServer((socket) => {
    let buffer = '';
    let inData = false;
    let data = '';
    socket.write('220 sink ESMTP\r\n');
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      let end;
      while ((end = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            const subject = data.split('\n').find((l) => l.startsWith('Subject: '));
            this.subjects.push(subject ? subject.slice('Subject: '.length) : '');
            data = '';
            socket.write('250 kept\r\n');
          } else {
            data += line + '\n';
          }
          continue;
        }
        const upper = line.toUpperCase();
        if (upper.startsWith('EHLO')) socket.write('250 sink\r\n');
        else if (upper === 'DATA') {
          inData = true;
          socket.write('354 go on\r\n');
        } else if (upper === 'QUIT') {
          socket.end('221 bye\r\n');
        } else socket.write('250 ok\r\n');
      }
    });
    socket.on('error', () => {});
  });

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  stop() {
    this.server.close();
  }
}

test('an admin sets up e-mail alerts, sees errors beside the fields, and a test alert reaches a real SMTP server', async ({ page }) => {
  const errors = collectConsoleErrors(page);
  const sink = new SmtpSink();
  const port = await sink.start();
  try {
    await signIn(page, 'admin');
    await waitForHydration(page);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
    const alerts = page.getByRole('region', { name: 'Alerts' });
    await expect(alerts.getByRole('heading', { name: 'Alerts', exact: true })).toBeVisible();
    await expect(alerts.getByText('No alerts yet.')).toBeVisible();

    // E-mail on without a host: refused, with the message beside the field.
    await alerts.getByLabel('E-mail alerts').check();
    await alerts.getByRole('button', { name: 'Save alert settings' }).click();
    await expect(alerts.getByLabel('SMTP host')).toHaveAccessibleDescription(/SMTP host is required/);

    await alerts.getByLabel('SMTP host').fill('127.0.0.1');
    await alerts.getByRole('spinbutton', { name: 'Port' }).fill(String(port));
    await alerts.getByLabel('Security').selectOption('none');
    await alerts.getByRole('textbox', { name: 'From', exact: true }).fill('herald@example.com');
    await alerts.getByLabel('Recipients').fill('ops@example.com');
    await alerts.getByRole('button', { name: 'Save alert settings' }).click();
    await expect(alerts.getByText('Alert settings saved.')).toBeVisible();

    await alerts.getByRole('button', { name: 'Send test alert' }).click();
    await expect(alerts.getByText('Test alert sent to ops@example.com')).toBeVisible();
    await expect.poll(() => sink.subjects).toEqual(['[Herald] Test alert']);
    await snap(page, 'settings-alerts');

    // E-mail off again, so later specs' failures send nothing.
    await alerts.getByLabel('E-mail alerts').uncheck();
    await alerts.getByRole('button', { name: 'Save alert settings' }).click();
    await expect(alerts.getByText('Alert settings saved.')).toBeVisible();
    await expect(alerts.getByLabel('E-mail alerts')).not.toBeChecked();
    // The refused save answered 422 (shown beside the field); nothing else went wrong.
    expect(errors.filter((e) => !/status of 422/.test(e))).toEqual([]);
  } finally {
    sink.stop();
  }
});

test('events that arrive while a webhook is off are held, and can be discarded when switching it on', async ({ page, request }) => {
  const errors = collectConsoleErrors(page);
  const receiver = new Receiver();
  const url = await receiver.start();
  let id = '';
  try {
    const created = await api(request, 'POST', '/api/v1/webhooks', { name: 'Paused CRM', url, event_types: ['points.awarded'] });
    expect(created.status()).toBe(201);
    id = (await created.json()).id;
    expect((await api(request, 'PATCH', `/api/v1/webhooks/${id}`, { enabled: false })).status()).toBe(200);
    for (let i = 0; i < 2; i++) {
      expect((await api(request, 'POST', '/api/v1/events', { event_type: 'points.awarded', data: { user_id: `u${i}`, points: 5 } })).status()).toBe(202);
    }

    await signIn(page, 'admin');
    await waitForHydration(page);
    // The webhook's page says so and leads to them, waiting on the Deliveries page.
    await page.getByRole('link', { name: 'Paused CRM' }).click();
    await expect(page.getByText('2 deliveries held')).toBeVisible();
    await page.getByRole('link', { name: 'See them' }).click();
    await expect(page).toHaveURL(/deliveries\?status=pending&webhook_id=wh_/);
    await expect(page.getByRole('row').filter({ hasText: 'Held (webhook off)' })).toHaveCount(2);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks' }).click();
    const row = page.getByRole('row').filter({ hasText: 'Paused CRM' });
    await expect(row.getByText('2 held until it is switched on')).toBeVisible();
    await row.getByLabel('Discard the 2 held deliveries of Paused CRM when switching it on').check();
    await row.getByRole('switch', { name: 'Enabled: Paused CRM' }).click();
    await expect(row.getByRole('switch', { name: 'Enabled: Paused CRM' })).toHaveAttribute('aria-checked', 'true');
    await expect(row.getByText(/held until it is switched on/)).toHaveCount(0);

    // Dead-lettered, not sent, and still there to replay.
    const dead = await (await api(request, 'GET', '/api/v1/deliveries?status=failed')).json();
    const mine = dead.items.filter((d: { webhook_id: string }) => d.webhook_id === id);
    expect(mine).toHaveLength(2);
    expect(mine[0].last_error).toMatch(/^discarded by admin@example.com/);
    expect(receiver.received).toHaveLength(0);
    expect(errors).toEqual([]);
  } finally {
    if (id) expect((await api(request, 'DELETE', `/api/v1/webhooks/${id}`)).status()).toBe(204);
    await receiver.stop();
  }
});
