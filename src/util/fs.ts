/** File-system helpers shared by the server, the store and the operations commands. */
import { access } from 'node:fs/promises';

/** True when `path` exists (any type); false for any error reaching it. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * What an errno means to an operator who cannot write somewhere, or undefined for codes without
 * a plainer wording (the caller keeps the system's message then).
 */
export function fsProblem(code: string | undefined): string | undefined {
  switch (code) {
    case 'ENOSPC':
      return 'the disk is full';
    case 'EROFS':
      return 'the file system is read-only';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOENT':
      return 'the directory does not exist';
    default:
      return undefined;
  }
}
