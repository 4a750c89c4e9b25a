import * as fs from 'node:fs';

/** Removes the run's database directory when the config made it (not one the caller named). */
export default async function teardown(): Promise<void> {
  const made = process.env.HERALD_E2E_MADE_DIR;
  if (made && made === process.env.HERALD_E2E_DIR) {
    fs.rmSync(made, { recursive: true, force: true });
  }
}
