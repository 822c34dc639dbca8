/**
 * `certpost backup` and `certpost restore`: server/backup.ts on the command line. Backups are
 * taken online (the server may keep running); restore writes a new data directory only.
 */
import type { Command } from 'commander';
import { backup, BackupError, restore, type Manifest } from '../server/backup.ts';
import { storeOptions } from './admin.ts';
import { CliError, EXIT } from './exit-codes.ts';

function summary(m: Manifest, where: string): string {
  const files = Object.keys(m.files).length;
  return `${where}: ${m.backend} schema ${m.schemaVersion}, ${files} files, taken ${m.createdAt} by certpost ${m.certpostVersion}\n`;
}

async function backupErrors<T>(f: () => Promise<T>, exit: number): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof BackupError) throw new CliError(e.message, exit);
    throw e;
  }
}

export function backupCommands(root: Command, out: (s: string) => void): void {
  storeOptions(root.command('backup'))
    .description(
      'copy the data directory and a consistent snapshot of the database to a new directory',
    )
    .requiredOption('--out <dir>', 'the backup directory to create')
    .option('--json', 'print the manifest as JSON')
    .addHelpText(
      'after',
      '\nThe backup holds the CA keys as the data directory does (and its passphrase file, if\nthere is one): keep it as safe as the CA. Check and restore with "certpost restore".',
    )
    .action(async (o: { out: string; data: string; database?: string; json?: boolean }) => {
      const m = await backupErrors(
        () => backup({ dataDir: o.data, database: o.database, out: o.out }),
        EXIT.output,
      );
      out(o.json ? `${JSON.stringify(m, null, 2)}\n` : summary(m, o.out));
    });
  root
    .command('restore')
    .description(
      'check a backup (every file against its SHA-256) and restore it into a new data directory',
    )
    .requiredOption('--from <dir>', 'the backup directory')
    .requiredOption('--data <dir>', 'the data directory to create (must not exist)')
    .option('--database <url>', 'postgres://… of an empty database, for a PostgreSQL backup')
    .option('--json', 'print the manifest as JSON')
    .action(async (o: { from: string; data: string; database?: string; json?: boolean }) => {
      const m = await backupErrors(
        () => restore({ from: o.from, dataDir: o.data, database: o.database }),
        EXIT.input,
      );
      out(o.json ? `${JSON.stringify(m, null, 2)}\n` : summary(m, o.data));
    });
}
