/**
 * Atomic file writes: the data is written to a temporary file in the same directory and renamed
 * over the target, so readers (and a crash) see the old file or the new one, never half.
 */
import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';

export async function writeAtomicFile(
  path: string,
  data: Uint8Array | string,
  mode = 0o644,
): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data, { mode, flag: 'wx' });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
