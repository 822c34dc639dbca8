/**
 * `certpost user …`: the people who sign in to the web portal (create, list, passwd, disable,
 * enable). The operations are server/portal/users.ts's, shared with the portal; here is only
 * the command line around them. They need only the store, not the CA, so the first
 * administrator can be created before the server ever started.
 *
 * A password is never an argument (argv is visible to every user of the machine): it comes
 * from `--password-file`, `CERTPOST_USER_PASSWORD`, or a prompt (asked twice) on a terminal.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import * as users from '../server/portal/users.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/types.ts';
import { op, storeOptions } from './admin.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { canPrompt, promptSecret, readSecretFile } from './io.ts';

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

interface DataOptions {
  data: string;
  database?: string;
  json?: boolean;
}

/** --data, --database and --json: these commands need the store only (no CA, no PIN). */
function dataOptions(cmd: Command): Command {
  return storeOptions(cmd).option('--json', 'print one JSON document');
}

/** Runs `f` on the data directory's store (created when missing), closing it afterwards. */
async function withStore<T>(o: DataOptions, f: (store: Store) => Promise<T>): Promise<T> {
  if (o.database === undefined) await mkdir(o.data, { recursive: true, mode: 0o700 });
  const store = await openStore(o.database ?? join(o.data, 'certpost.db'));
  try {
    return await f(store);
  } finally {
    await store.close();
  }
}

/** The new password: --password-file, CERTPOST_USER_PASSWORD, or asked twice on a terminal. */
async function newPassword(o: { passwordFile?: string }): Promise<string> {
  if (o.passwordFile !== undefined) return await readSecretFile(o.passwordFile);
  const fromEnv = process.env['CERTPOST_USER_PASSWORD'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (!canPrompt())
    throw new CliError(
      'give the password with --password-file FILE or CERTPOST_USER_PASSWORD (or run on a terminal to be asked)',
      EXIT.usage,
    );
  const first = await promptSecret('New password: ');
  if ((await promptSecret('Repeat the password: ')) !== first)
    throw new CliError('the passwords differ', EXIT.usage);
  return first;
}

function passwordFile(cmd: Command): Command {
  return cmd.option(
    '--password-file <file>',
    'read the password from the first line of a file (or CERTPOST_USER_PASSWORD; else asked on the terminal)',
  );
}

function line(u: users.UserRow): string {
  return `${u.username}  ${u.role}  ${u.status}  ${u.displayName}${u.email ? ` <${u.email}>` : ''}\n`;
}

export function userCommands(root: Command, out: (s: string) => void): void {
  const group = root
    .command('user')
    .description(
      'people who sign in to the web portal (role user: own certificates; admin: the console)',
    );

  dataOptions(
    passwordFile(
      group
        .command('create')
        .description('create a portal user')
        .argument('<username>', 'sign-in name: a UPN (ann@contoso.com) or a plain name')
        .option('--email <address>', 'email address (default: the user name when it is a UPN)')
        .option('--name <display name>', 'display name (default: the part before "@")')
        .addOption(
          new Option('--role <role>', 'user: own certificates; admin: the console too')
            .choices(users.USER_ROLES)
            .default('user'),
        ),
    ),
  )
    .addHelpText(
      'after',
      '\nThe first administrator:\n  certpost user create admin@contoso.com --role admin --data ./data\nThe password is stored as an scrypt hash; it is never shown or logged.',
    )
    .action(
      async (
        username: string,
        o: DataOptions & {
          email?: string;
          name?: string;
          role: 'admin' | 'user';
          passwordFile?: string;
        },
      ) => {
        const password = await newPassword(o);
        await withStore(o, async (store) => {
          const u = await op(() =>
            users.createUser({ store }, 'cli', {
              username,
              password,
              role: o.role,
              ...(o.email !== undefined ? { email: o.email } : {}),
              ...(o.name !== undefined ? { displayName: o.name } : {}),
            }),
          );
          out(o.json ? json(u) : `created ${line(u)}`);
        });
      },
    );

  dataOptions(group.command('list').description('every portal user, by user name')).action(
    async (o: DataOptions) => {
      await withStore(o, async (store) => {
        const r = await users.listUsers({ store });
        out(o.json ? json(r) : r.users.length ? r.users.map(line).join('') : 'no users\n');
      });
    },
  );

  dataOptions(
    passwordFile(
      group
        .command('passwd')
        .description("set a user's password; the user's sessions end")
        .argument('<username>'),
    ),
  ).action(async (username: string, o: DataOptions & { passwordFile?: string }) => {
    const password = await newPassword(o);
    await withStore(o, async (store) => {
      const u = await op(() => users.setPassword({ store }, 'cli', username, password));
      out(o.json ? json(u) : `password changed for ${u.username}\n`);
    });
  });

  for (const [name, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    dataOptions(
      group
        .command(name)
        .description(
          disabled
            ? 'disable a user: sign-in is refused and the sessions end'
            : 'enable a disabled user',
        )
        .argument('<username>'),
    ).action(async (username: string, o: DataOptions) => {
      await withStore(o, async (store) => {
        const u = await op(() => users.setDisabled({ store }, 'cli', username, disabled));
        out(o.json ? json(u) : `${u.username} ${u.status}\n`);
      });
    });
  }
}
