/**
 * Atomic file writes: the data goes to a temporary file in the same directory, is flushed to
 * disk, and is renamed over the target, so readers (and a crash) see the old file or the new
 * one, never half. `mode` is applied exactly (the umask can only have removed bits).
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';

export async function writeAtomicFile(
  path: string,
  data: Uint8Array | string,
  mode = 0o644,
): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.chmod(mode);
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
}
