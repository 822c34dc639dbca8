/**
 * The `certpost` command line. Every command has `--help`; commands that report data accept
 * `--json` and then print exactly one JSON document on stdout. Errors are one line on stderr,
 * prefixed `certpost:`, with an exit code from {@link EXIT} (see exit-codes.ts).
 */
import { backupCommands } from './backup.ts';
import { doctorCommands } from './doctor.ts';
import { fleetCommands } from './fleet.ts';
import { mdmCommands } from './mdm.ts';
import { mailCommands } from './mail.ts';
import { MailError } from '../mail/errors.ts';
import { basename } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { HsmError } from '../hsm/errors.ts';
import { PkiError } from '../pki/errors.ts';
import { inspectContents } from '../pki/inspect.ts';
import { readPkiWithPassword, type PkiContents } from '../pki/read.ts';
import {
  CliError,
  CONFIG_EXIT,
  DEVICE_EXIT,
  EML_EXIT,
  EXIT,
  HSM_EXIT,
  MAIL_EXIT,
  PKI_EXIT,
} from './exit-codes.ts';
import { DeviceError } from '../device/errors.ts';
import { EmlError } from '../mail/eml.ts';
import { askPassword, canPrompt, promptSecret, readInput, readSecretFile } from './io.ts';
import { renderReport } from './render.ts';
import { loadTrustAnchors, SYSTEM_BUNDLE } from './trust.ts';
import { convert, CONVERT_FORMATS, type ConvertFormat } from './convert.ts';
import { serveCommands } from './serve.ts';
import { applySettings } from './settings.ts';
import { adminCommands } from './admin.ts';
import { scepCommands } from './scep.ts';
import { deviceCommands } from './device.ts';
import { installCommands } from './install.ts';
import { userCommands } from './user.ts';
import pkg from '../../package.json' with { type: 'json' };

interface PasswordOptions {
  password?: string;
  passwordFile?: string;
}

/** The password from --password, --password-file or CERTPOST_PASSWORD, else undefined. */
async function givenPassword(o: PasswordOptions): Promise<string | undefined> {
  if (o.password !== undefined) return o.password;
  if (o.passwordFile !== undefined) return await readSecretFile(o.passwordFile);
  return process.env['CERTPOST_PASSWORD'];
}

/**
 * Reads and sniffs a file. When it needs a password that was not given and we are on a
 * terminal, asks for it, and asks again (up to three times) when it is wrong.
 */
export async function readWithPassword(path: string, o: PasswordOptions): Promise<PkiContents> {
  const bytes = await readInput(path);
  const name = path === '-' ? undefined : basename(path);
  return await readPkiWithPassword(bytes, {
    filename: name,
    password: await givenPassword(o),
    ...(canPrompt() ? { ask: askPassword(`Password for ${name ?? 'standard input'}: `) } : {}),
  });
}

function passwordOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        '-p, --password <password>',
        'password of a PKCS#12 file or encrypted key (visible to other users: prefer --password-file)',
      ),
    )
    .addOption(
      new Option('--password-file <file>', 'read the password from the first line of a file'),
    );
}

function program(out: (s: string) => void): Command {
  const root = new Command('certpost')
    .description(
      'certpost: deliver X.509 certificates to managed devices (CA, SCEP, OMA-DM, portal, mail, device agent)',
    )
    .version(pkg.version, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: out, writeErr: (s) => process.stderr.write(s) })
    .exitOverride()
    // Settings (settings.ts): the environment and the --config file, before any action.
    .hook('preAction', (_root, action) => applySettings(root, action));

  passwordOptions(
    root
      .command('inspect')
      .description(
        'show every certificate, key and request in a file (DER, PEM, PKCS#7, PKCS#12, CSR, key); the format is detected from the content',
      )
      .argument('<file>', 'the file to read, or - for standard input')
      .option('--json', 'print one JSON document instead of text')
      .option(
        '--trust <file...>',
        'also trust the certificates in these files (PEM, DER or P7B) when judging chains',
      )
      .option('--no-system-trust', `do not trust the system's roots (${SYSTEM_BUNDLE})`),
  )
    .addHelpText(
      'after',
      '\nA PKCS#12 file without --password asks for it when run on a terminal.\nExit codes: 0 ok, 3 unreadable input, 4 password missing/wrong or MAC failure, 5 unsupported, 6 safety limit.',
    )
    .action(
      async (
        file: string,
        o: PasswordOptions & { json?: boolean; trust?: string[]; systemTrust: boolean },
      ) => {
        const contents = await readWithPassword(file, o);
        const trusted = await loadTrustAnchors(o.trust ?? [], o.systemTrust);
        const report = inspectContents(contents, { trusted });
        out(
          o.json
            ? `${JSON.stringify(report, null, 2)}\n`
            : renderReport(report, file === '-' ? 'stdin' : file),
        );
      },
    );

  passwordOptions(
    root
      .command('convert')
      .description(
        'convert a certificate file to another format; nothing is written when anything fails',
      )
      .argument('<file>', 'the file to read, or - for standard input')
      .addOption(
        new Option('--to <format>', 'output format').choices(CONVERT_FORMATS).makeOptionMandatory(),
      )
      .option(
        '-o, --out <file>',
        'output file (default: standard output; binary formats need --out unless stdout is redirected)',
      )
      .option(
        '--out-password <password>',
        'password for the PFX written (or CERTPOST_OUT_PASSWORD)',
      )
      .option('--out-password-file <file>', 'read the PFX output password from a file')
      .addOption(
        new Option(
          '--pfx-profile <profile>',
          'PFX encryption: modern = AES-256/SHA-256, compat = 3DES/SHA-1 for old Windows',
        )
          .choices(['modern', 'compat'])
          .default('modern'),
      )
      .option(
        '--keys',
        'with --to pem: also write private keys (PKCS#8; encrypted when --out-password is given)',
      )
      .option(
        '--index <n>',
        'with --to der: which certificate to write (1-based) when the file holds several',
      ),
  ).action(
    async (
      file: string,
      o: PasswordOptions & {
        to: ConvertFormat;
        out?: string;
        outPassword?: string;
        outPasswordFile?: string;
        pfxProfile: 'modern' | 'compat';
        keys?: boolean;
        index?: string;
      },
    ) => {
      const contents = await readWithPassword(file, o);
      let outPassword =
        o.outPassword ??
        (o.outPasswordFile
          ? await readSecretFile(o.outPasswordFile)
          : process.env['CERTPOST_OUT_PASSWORD']);
      if (o.to === 'pfx' && outPassword === undefined) {
        if (!canPrompt())
          throw new CliError(
            '--to pfx needs --out-password, --out-password-file or CERTPOST_OUT_PASSWORD',
            EXIT.usage,
          );
        outPassword = await promptSecret('Password for the new PFX: ');
      }
      if (!o.out && (o.to === 'der' || o.to === 'pfx') && process.stdout.isTTY) {
        throw new CliError(
          `--to ${o.to} writes binary data: give --out FILE or redirect standard output`,
          EXIT.usage,
        );
      }
      const index = o.index === undefined ? undefined : Number(o.index);
      if (index !== undefined && !(Number.isInteger(index) && index >= 1))
        throw new CliError('--index must be a positive whole number', EXIT.usage);
      await convert(contents, {
        to: o.to,
        out: o.out,
        outPassword,
        profile: o.pfxProfile,
        keys: Boolean(o.keys),
        index,
        write: (data) => process.stdout.write(data),
      });
    },
  );

  serveCommands(root);
  adminCommands(root, out);
  scepCommands(root, out);
  deviceCommands(root, out);
  installCommands(root, out);
  mdmCommands(root, out);
  mailCommands(root, out);
  fleetCommands(root, out);
  doctorCommands(root, out);
  backupCommands(root, out);
  userCommands(root, out);
  return root;
}

/** Runs the CLI and returns the exit code. `argv` is `process.argv`. */
export async function main(
  argv: readonly string[],
  out: (s: string) => void = (s) => void process.stdout.write(s),
): Promise<number> {
  try {
    await program(out).parseAsync(argv as string[]);
    return EXIT.ok;
  } catch (e) {
    return reportError(e);
  }
}

function reportError(e: unknown): number {
  if (e instanceof CommanderError) {
    // Help and version are "errors" to commander when exitOverride is on.
    return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (e instanceof PkiError) {
    process.stderr.write(`certpost: ${e.message}\n`);
    return PKI_EXIT[e.code];
  }
  if (e instanceof HsmError) {
    // Messages name the module, token and key, never a PIN (hsm/errors.ts).
    process.stderr.write(`certpost: ${e.message}\n`);
    return HSM_EXIT[e.code];
  }
  if (e instanceof MailError) {
    // Messages name the relay and the recipient, never a password (mail/errors.ts).
    process.stderr.write(`certpost: ${e.message}\n`);
    return MAIL_EXIT[e.code];
  }
  if (e instanceof DeviceError) {
    process.stderr.write(`certpost: ${e.message}\n`);
    return DEVICE_EXIT[e.code];
  }
  if (e instanceof EmlError) {
    process.stderr.write(`certpost: ${e.message}\n`);
    return EML_EXIT[e.code];
  }
  if (e instanceof CliError) {
    process.stderr.write(`certpost: ${e.message}\n`);
    return e.exitCode;
  }
  const err = e as NodeJS.ErrnoException;
  const configExit = err.code !== undefined ? CONFIG_EXIT[err.code] : undefined;
  if (configExit !== undefined) {
    process.stderr.write(`certpost: ${err.message}\n`);
    return configExit;
  }
  if (err.code === 'ENOENT' || err.code === 'EACCES' || err.code === 'EISDIR') {
    process.stderr.write(
      `certpost: ${err.code === 'ENOENT' ? 'no such file' : 'cannot open'}: ${err.path ?? ''}\n`,
    );
    return EXIT.input;
  }
  process.stderr.write(`certpost: internal error: ${err.stack ?? String(e)}\n`);
  return EXIT.internal;
}
