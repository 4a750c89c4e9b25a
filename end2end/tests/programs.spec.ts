import { test, expect } from '@playwright/test';
import { api, signIn, waitForHydration, snap, collectConsoleErrors } from './helpers';

test('an install admin creates a program, switches to it and back; the URL keeps the program; a viewer sees only their programs', async ({ page, browser }) => {
  const errors = collectConsoleErrors(page);
  await signIn(page, 'admin');
  await expect(page).toHaveURL(/\/p\/prg_[0-9a-f]{32}$/);
  const home = new URL(page.url()).pathname;
  await waitForHydration(page);

  // Manage programs, from the switcher.
  const switcher = page.locator('details.program-switcher');
  await switcher.locator('summary').click();
  await switcher.getByRole('link', { name: 'Manage programs' }).click();
  await expect(page.getByRole('heading', { name: 'Programs', level: 1 })).toBeVisible();
  await waitForHydration(page);
  const create = page.getByRole('form', { name: 'Create a program' });
  await create.getByLabel('Name').fill('default program');
  await create.getByRole('button', { name: 'Create program' }).click();
  await expect(page.getByText('Another program already has this name')).toBeVisible();
  await create.getByLabel('Name').fill('Gold Club');
  await create.getByRole('button', { name: 'Create program' }).click();
  await expect(page.getByRole('row').filter({ hasText: 'Gold Club' })).toBeVisible();
  await snap(page, 'programs');

  // Open it from the switcher: its own, empty, webhooks list; the URL names it.
  await switcher.locator('summary').click();
  await switcher.getByRole('link', { name: /Gold Club/ }).click();
  await expect(page).toHaveURL(/\/p\/prg_[0-9a-f]{32}$/);
  const gold = new URL(page.url()).pathname;
  expect(gold).not.toBe(home);
  await expect(switcher.locator('.program-name')).toHaveText('Gold Club');
  await expect(page.getByRole('heading', { name: 'No webhooks yet' })).toBeVisible();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit Logs' }).click();
  await expect(page).toHaveURL(new RegExp(`${gold}/audit-logs$`));
  await snap(page, 'program-gold-audit');

  // Back and forward keep the program.
  await page.goBack();
  await expect(page).toHaveURL(new RegExp(`${gold}$`));
  await expect(switcher.locator('.program-name')).toHaveText('Gold Club');
  await page.goForward();
  await expect(page).toHaveURL(new RegExp(`${gold}/audit-logs$`));

  // Add the viewer to Gold Club as a viewer (their existing account: no password needed).
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
  await expect(page.getByRole('heading', { name: 'Members' })).toBeVisible();
  await waitForHydration(page);
  const members = page.getByRole('form', { name: 'Add a member' });
  await members.getByLabel('E-mail').fill('viewer@example.com');
  await members.getByLabel('Role').selectOption('viewer');
  await members.getByRole('button', { name: 'Add member' }).click();
  await expect(page.getByRole('row').filter({ hasText: 'viewer@example.com' })).toBeVisible();

  // Switch back to the default program.
  await switcher.locator('summary').click();
  await switcher.getByRole('link', { name: /Default program/ }).click();
  await expect(page).toHaveURL(new RegExp(`${home}$`));
  await expect(switcher.locator('.program-name')).toHaveText('Default program');

  // The viewer now has both programs, as a viewer of each; no Manage programs.
  const context = await browser.newContext();
  const viewer = await context.newPage();
  await signIn(viewer, 'viewer');
  const theirs = viewer.locator('details.program-switcher');
  await theirs.locator('summary').click();
  await expect(theirs.getByRole('link', { name: /Gold Club · Viewer/ })).toBeVisible();
  await expect(theirs.getByRole('link', { name: 'Manage programs' })).toHaveCount(0);
  await snap(viewer, 'program-switcher-viewer');
  // The Programs screen refuses them.
  await viewer.goto('/programs');
  await expect(viewer.getByText('your role in this program does not allow this')).toBeVisible();
  await context.close();
  expect(errors.filter((e) => !/status of 422/.test(e))).toEqual([]);
});

test('a tested configuration moves to another program: export with a sealed secret, preview, import', async ({ page, request }) => {
  const errors = collectConsoleErrors(page);
  const created = await api(request, 'POST', '/api/v1/webhooks', {
    name: 'Transferable sink',
    url: 'http://127.0.0.1:9/transfer',
    event_types: ['points.awarded', 'reward.redeemed'],
  });
  expect(created.status()).toBe(201);
  const source = await created.json();
  try {
    await moveIt();
  } finally {
    // The default program's list stays as the other specs expect it.
    await api(request, 'DELETE', `/api/v1/webhooks/${source.id}`);
  }

  async function moveIt() {
  await signIn(page, 'admin');
  const home = new URL(page.url()).pathname;
  // A program to move it to.
  await page.goto('/programs');
  await waitForHydration(page);
  const create = page.getByRole('form', { name: 'Create a program' });
  await create.getByLabel('Name').fill('Silver Club');
  await create.getByRole('button', { name: 'Create program' }).click();
  await page.getByRole('row').filter({ hasText: 'Silver Club' }).getByRole('link', { name: 'Silver Club' }).click();
  await expect(page).toHaveURL(/\/p\/prg_[0-9a-f]{32}$/);
  const silver = new URL(page.url()).pathname;

  // Export from the default program, secrets sealed with a passphrase.
  await page.goto(`${home}/settings`);
  await waitForHydration(page);
  const exporter = page.getByRole('form', { name: 'Export webhooks' });
  await exporter.getByLabel('Passphrase (optional)').fill('a long export passphrase');
  await exporter.getByRole('button', { name: 'Export' }).click();
  const doc = page.getByLabel('Exported document');
  await expect(doc).toBeVisible();
  const text = await doc.inputValue();
  expect(JSON.parse(text).format).toBe('herald.program-export');
  expect(text).toContain('Transferable sink');
  expect(text).not.toContain('whsec_');

  // Import into Silver Club: preview first, then apply.
  await page.goto(`${silver}/settings`);
  await waitForHydration(page);
  const importer = page.getByRole('form', { name: 'Import webhooks' });
  await importer.getByLabel('Document').fill(text);
  await importer.getByLabel('Passphrase of the export').fill('not it at all');
  await importer.getByRole('button', { name: 'Preview' }).click();
  await expect(page.getByText('This passphrase does not open the export')).toBeVisible();
  await importer.getByLabel('Passphrase of the export').fill('a long export passphrase');
  await importer.getByRole('button', { name: 'Preview' }).click();
  const preview = page.getByRole('table', { name: 'Preview' });
  const row = preview.getByRole('row').filter({ hasText: 'Transferable sink' });
  await expect(row.getByText('Create')).toBeVisible();
  await expect(row.getByText('With its imported secret')).toBeVisible();
  await snap(page, 'import-preview');
  await page.getByRole('button', { name: /^Import \d+ webhook/ }).click();
  await expect(page.getByText(/Imported: \d+ created/)).toBeVisible();

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks' }).click();
  await expect(page).toHaveURL(new RegExp(`${silver}$`));
  await expect(page.getByRole('row').filter({ hasText: 'Transferable sink' })).toBeVisible();
  expect(errors.filter((e) => !/status of 422/.test(e))).toEqual([]);
  }
});
