/**
 * The device's certificate commands (issue 6), on the state directory of `certpost device`:
 *
 * - `install FILE|URL|MESSAGE.eml…`: reads the inputs (device/install-input.ts), prints the
 *   review (each certificate as `inspect` shows it, its chain judged on the device and where it
 *   goes), asks to confirm on the terminal (or takes `--yes`), asks for PFX passwords with
 *   three attempts (or takes `--password-file` / `CERTPOST_PFX_PASSWORD`), and installs all or
 *   nothing (device/installer.ts, which also states the trust rule). Without `--yes` and
 *   without a terminal it refuses instead of waiting for an answer nobody can give.
 * - `store list|show|delete`: the certificates of the stores; delete asks as install does.
 * - `select`: which client certificate a Wi-Fi/VPN profile with these criteria would pick
 *   (device/select.ts), with a warning on stderr when several match.
 *
 * Exit codes (exit-codes.ts): 14 a certificate's chain is untrusted or expired, 15 not
 * confirmed, 16 no such certificate or no match, and the usual ones for unreadable input (3),
 * passwords (4) and downloads (10).
 */
import { Command, Option } from 'commander';
import type { DeviceAgent } from '../device/agent.ts';
import { DeviceError } from '../device/errors.ts';
import { loadInstallInput } from '../device/install-input.ts';
import {
  applyInstall,
  checkTrustRule,
  reviewInstall,
  type ApplyOptions,
  type InstallReport,
  type InstalledCertificate,
} from '../device/installer.ts';
import { selectCertificate, type Selection } from '../device/select.ts';
import type { CertificateEntry, Scope } from '../device/state.ts';
import type { StoreName } from '../pki/install-plan.ts';
import { judgeOnDevice } from '../device/trust.ts';
import { inspectCertificate } from '../pki/x509.ts';
import {
  certificateSummary,
  stateOption,
  summaryLine,
  withAgent,
  type AgentCliOptions,
} from './device.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { askPassword, canPrompt, confirm, readSecretFile } from './io.ts';
import { field, renderCertificate } from './render.ts';

const STORES: readonly StoreName[] = [
  'Root',
  'CA',
  'My',
  'TrustedPublisher',
  'TrustedPeople',
  'UntrustedCertificates',
];

/** A store name in any case (`my`, `ROOT`), as Windows' tools accept them. */
function parseStore(value: string): StoreName {
  const store = STORES.find((s) => s.toLowerCase() === value.toLowerCase());
  if (!store) throw new CliError(`--store must be one of ${STORES.join(', ')}`, EXIT.usage);
  return store;
}

const scopeOption = () =>
  new Option('--scope <scope>', 'device or user certificate stores').choices(['device', 'user']);
const storeOption = (what: string) =>
  new Option(`--store <store>`, `${what} (${STORES.join(', ')}; any case)`).argParser(parseStore);

const KEY_LOCATIONS = { software: 3, 'tpm-if-present': 2, tpm: 1 } as const;

interface InstallCli extends AgentCliOptions {
  scope?: Scope;
  store?: StoreName;
  yes?: boolean;
  passwordFile?: string;
  exportable?: boolean;
  keyLocation: keyof typeof KEY_LOCATIONS;
  allowUntrusted?: boolean;
  json?: boolean;
}

/** Asks before a change, or takes `--yes`; never waits for an answer nobody can give. */
async function confirmed(ask: string, yes: boolean | undefined): Promise<void> {
  if (yes) return;
  if (!canPrompt())
    throw new CliError(
      'not on a terminal, so nobody can answer the question: run again with --yes to go ahead',
      EXIT.usage,
    );
  if (!(await confirm(ask)))
    throw new DeviceError('ERR_DEVICE_NOT_CONFIRMED', 'nothing changed: not confirmed');
}

function renderReview(r: InstallReport, now: Date): string {
  const parts = [
    `Reading ${r.sources.length} input${r.sources.length === 1 ? '' : 's'}:\n${r.sources
      .map((s) => `  ${s.name}: ${s.format.toUpperCase()} (${s.encoding})\n`)
      .join('')}`,
  ];
  r.certificates.forEach((c, i) => {
    const { scope, store, reason, action, newRoot, source } = c.install;
    parts.push(
      renderCertificate(c, i, r.certificates.length, now) +
        field(
          'Install into',
          `${scope} ${store} (${reason})${newRoot ? ': A NEW TRUSTED ROOT' : ''}`,
        ) +
        field(
          'Action',
          action === 'present'
            ? 'none: already there'
            : action === 'replace'
              ? 'replaces the copy installed without its private key'
              : 'install',
        ) +
        field('From', source),
    );
  });
  for (const s of r.sources) for (const n of s.notes) parts.push(`Note: ${s.name}: ${n}\n`);
  return parts.join('\n');
}

function question(r: InstallReport): string {
  const todo = r.certificates.filter((c) => c.install.action !== 'present');
  const roots = todo.filter((c) => c.install.newRoot);
  const stores = [...new Set(todo.map((c) => `${c.install.scope} ${c.install.store}`))];
  const rootText = roots.length
    ? `This adds ${roots.length === 1 ? 'a new trusted root' : `${roots.length} new trusted roots`} (${roots.map((c) => c.subject).join('; ')}): this device will trust whatever ${roots.length === 1 ? 'it signs' : 'they sign'}.\n`
    : '';
  return `${rootText}Install ${todo.length} certificate${todo.length === 1 ? '' : 's'} into ${stores.join(', ')}? [y/N] `;
}

const renderInstalled = (done: readonly InstalledCertificate[]) =>
  done
    .map(
      (d) =>
        `${{ install: 'installed', replace: 'replaced', present: 'already there' }[d.action]}: ${d.scope}/${d.store}  ${d.thumbprint}  ${d.subject}${d.key ? `  (private key: ${d.key})` : ''}\n`,
    )
    .join('');

async function install(inputs: readonly string[], o: InstallCli, out: (s: string) => void) {
  const password =
    o.passwordFile !== undefined
      ? await readSecretFile(o.passwordFile)
      : process.env['CERTPOST_PFX_PASSWORD'];
  await withAgent(o, async (agent) => {
    const loaded = [];
    for (const input of inputs)
      loaded.push(
        await loadInstallInput(input, {
          trustedRootsPem: () => agent.certificates.trustedRootsPem(),
        }),
      );
    const now = new Date();
    const review = await reviewInstall(agent, loaded, {
      ...(o.scope ? { scope: o.scope } : {}),
      ...(o.store ? { store: o.store } : {}),
      ...(password !== undefined ? { password } : {}),
      ...(canPrompt() ? { ask: (r) => askPassword(`Password for ${r.source}: `)(r) } : {}),
      at: now,
    });
    const { report } = review;
    const messages = loaded.flatMap((l) => (l.message ? [l.message] : []));
    const json = (installed: readonly InstalledCertificate[]) =>
      out(`${JSON.stringify({ ...report, messages, installed }, null, 2)}\n`);
    if (!o.json) {
      for (const m of messages)
        out(
          `Message${m.subject !== undefined ? ` "${m.subject}"` : ''}${m.from !== undefined ? ` from ${m.from}` : ''}${m.skipped.length ? `; left out: ${m.skipped.map((a) => `${a.filename} (${a.reason})`).join(', ')}` : ''}\n`,
        );
      out(renderReview(report, now));
    }
    for (const w of report.warnings) process.stderr.write(`certpost: warning: ${w}\n`);
    try {
      checkTrustRule(report, o);
      if (report.certificates.every((c) => c.install.action === 'present')) {
        if (o.json) json([]);
        else out('\nNothing to install: every certificate is already there.\n');
        return;
      }
      if (!o.json) out('\n');
      await confirmed(question(report), o.yes);
    } catch (e) {
      if (o.json) json([]);
      throw e;
    }
    const apply: ApplyOptions = {
      rootsConfirmed: true, // by the question above, which names them, or by --yes
      ...(o.allowUntrusted ? { allowUntrusted: true } : {}),
      keyLocation: KEY_LOCATIONS[o.keyLocation],
      ...(o.exportable ? { exportable: true } : {}),
    };
    const done = await applyInstall(agent, review, apply);
    if (o.json) json(done);
    else out(renderInstalled(done));
  });
}

interface StoreCli extends AgentCliOptions {
  scope?: Scope;
  store?: StoreName;
  json?: boolean;
  yes?: boolean;
}

/** The store entries with this SHA-1 thumbprint (any case, `:` and spaces ignored). */
function matching(agent: DeviceAgent, thumbprint: string, o: StoreCli): CertificateEntry[] {
  const t = thumbprint.replace(/[:\s]/g, '').toUpperCase();
  if (!/^[0-9A-F]{40}$/.test(t))
    throw new CliError('a thumbprint is the 40 hex digits of the SHA-1', EXIT.usage);
  const found = agent.certificates
    .all()
    .filter(
      (c) =>
        c.thumbprint === t &&
        (o.scope === undefined || c.scope === o.scope) &&
        (o.store === undefined || c.store === o.store),
    );
  if (found.length === 0)
    throw new DeviceError(
      'ERR_DEVICE_CERT_NOT_FOUND',
      `no certificate ${t} in the stores searched`,
    );
  return found;
}

function storedReport(agent: DeviceAgent, entry: CertificateEntry) {
  const cert = agent.certificates.certificate(entry);
  const key = entry.keyId ? agent.keys.find(entry.keyId) : undefined;
  return {
    ...inspectCertificate(cert),
    ...certificateSummary(agent, entry),
    hasPrivateKey: key !== undefined,
    installedAt: entry.installedAt,
    trust: judgeOnDevice(agent.certificates, cert).trust,
  };
}

const describeChecks = (c: Selection['candidates'][number]) =>
  c.checks.map((k) => k.detail).join('; ');

function renderSelection(s: Selection): string {
  const lines: string[] = [];
  const chosen = s.candidates.find((c) => c.thumbprint === s.chosen);
  if (chosen) {
    lines.push(`Chosen: ${s.scope}/${s.store}  ${chosen.thumbprint}  ${chosen.subject}`);
    lines.push(`  ${describeChecks(chosen)}`);
  } else lines.push(`No certificate of ${s.scope}/${s.store} matches.`);
  const others = s.candidates.filter((c) => c !== chosen);
  if (others.length) lines.push('Not chosen:');
  for (const c of others) {
    const failed = c.checks.filter((k) => !k.ok).map((k) => k.detail);
    lines.push(
      `  ${c.thumbprint}  ${c.subject}: ${failed.length ? failed.join('; ') : 'matches too, but was issued earlier'}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export function installCommands(root: Command, out: (s: string) => void): void {
  stateOption(
    root
      .command('install')
      .description(
        'install certificates on the device from files, http(s) URLs or .eml messages: review, confirm, then all or nothing',
      )
      .argument(
        '<input...>',
        'a certificate file (.cer .pem .p7b .pfx …), a URL, or a .eml message',
      )
      .addOption(scopeOption())
      .addOption(storeOption('put every certificate in this store instead of the automatic choice'))
      .option(
        '-y, --yes',
        'install without asking (this also confirms new trusted roots): for scripts',
      )
      .option(
        '--password-file <file>',
        'password of the PFX files (first line; or CERTPOST_PFX_PASSWORD); on a terminal it is asked for',
      )
      .addOption(
        new Option('--key-location <where>', 'where private keys go')
          .choices(Object.keys(KEY_LOCATIONS))
          .default('software'),
      )
      .option('--exportable', 'keep imported private keys exportable (software keys only)')
      .option(
        '--allow-untrusted',
        'install even certificates whose chain is untrusted or expired (you know why)',
      )
      .option('--json', 'print one JSON document: the review and what was installed'),
  )
    .addHelpText(
      'after',
      `
The format comes from the content, never the name. A self-signed CA goes to Root, another CA
to CA, a certificate with its private key to My, someone else's certificate to TrustedPeople.
Every certificate must chain to a root the device trusts, or to a root the input brings and you
confirm; otherwise nothing is installed (exit 14). Plain http:// downloads work with a warning.
Exit codes: 3 unreadable or not a certificate, 4 password missing or wrong, 10 download failed,
14 untrusted or expired, 15 not confirmed.`,
    )
    .action((inputs: string[], o: InstallCli) => install(inputs, o, out));

  const store = root
    .command('store')
    .description('the certificate stores of the device: list, show, delete');

  stateOption(
    store
      .command('list')
      .description('list the certificates of the device stores')
      .addOption(scopeOption())
      .addOption(storeOption('only this store'))
      .option('--json', 'print one JSON document'),
  ).action(async (o: StoreCli) => {
    await withAgent(o, async (agent) => {
      const list = agent.certificates
        .all()
        .filter(
          (c) =>
            (o.scope === undefined || c.scope === o.scope) &&
            (o.store === undefined || c.store === o.store),
        )
        .map((c) => certificateSummary(agent, c));
      if (o.json) return out(`${JSON.stringify(list, null, 2)}\n`);
      out(list.length ? `${list.map(summaryLine).join('\n')}\n` : 'no certificates\n');
    });
  });

  stateOption(
    store
      .command('show')
      .description('show a certificate of the device stores, with its chain judged on the device')
      .argument('<thumbprint>', 'SHA-1 thumbprint (40 hex digits; case, colons and spaces ignored)')
      .addOption(scopeOption())
      .addOption(storeOption('only this store'))
      .option('--json', 'print one JSON document (a list: a certificate may be in several stores)'),
  ).action(async (thumbprint: string, o: StoreCli) => {
    await withAgent(o, async (agent) => {
      const reports = matching(agent, thumbprint, o).map((e) => storedReport(agent, e));
      if (o.json) return out(`${JSON.stringify(reports, null, 2)}\n`);
      out(
        reports
          .map(
            (r, i) =>
              // The key is on the device, not "in this file": the Key line says where.
              renderCertificate({ ...r, hasPrivateKey: false }, i, reports.length) +
              field('Store', `${r.scope} ${r.store}`) +
              field('Source', `${r.source.kind}${r.source.id ? ` ${r.source.id}` : ''}`) +
              field('Installed', r.installedAt) +
              field(
                'Key',
                r.key &&
                  `${r.key.provider}${r.key.exportable ? ', exportable' : ', not exportable'}`,
              ),
          )
          .join('\n'),
      );
    });
  });

  stateOption(
    store
      .command('delete')
      .description('delete a certificate (and its private key, when nothing else uses it)')
      .argument('<thumbprint>', 'SHA-1 thumbprint (40 hex digits)')
      .addOption(scopeOption())
      .addOption(storeOption('the store, when the certificate is in several'))
      .option('-y, --yes', 'delete without asking')
      .option('--json', 'print one JSON document'),
  ).action(async (thumbprint: string, o: StoreCli) => {
    await withAgent(o, async (agent) => {
      const found = matching(agent, thumbprint, o);
      if (found.length > 1)
        throw new CliError(
          `it is in ${found.map((c) => `${c.scope}/${c.store}`).join(' and ')}: say which with --scope and --store`,
          EXIT.usage,
        );
      const entry = found[0]!;
      if (entry.source.kind === 'wstep')
        throw new CliError(
          "this is the device's MDM client certificate: `certpost device unenroll` removes it",
          EXIT.usage,
        );
      const s = certificateSummary(agent, entry);
      const keyGoes =
        entry.keyId !== undefined &&
        !agent.certificates.all().some((c) => c !== entry && c.keyId === entry.keyId);
      if (entry.source.kind !== 'user')
        process.stderr.write(
          `certpost: warning: ${s.subject} was installed by device management (${entry.source.kind}); the server will see it gone at its next inventory and may install it again\n`,
        );
      await confirmed(
        `Delete ${s.scope}/${s.store} ${s.thumbprint} ${s.subject}${keyGoes ? ' and its private key' : ''}? [y/N] `,
        o.yes,
      );
      await agent.transact(async () => agent.certificates.remove(entry));
      const done = { deleted: s, privateKeyDeleted: keyGoes };
      out(
        o.json
          ? `${JSON.stringify(done, null, 2)}\n`
          : `deleted ${s.scope}/${s.store}  ${s.thumbprint}  ${s.subject}${keyGoes ? ' (and its private key)' : ''}\n`,
      );
    });
  });

  stateOption(
    root
      .command('select')
      .description(
        'which client certificate a Wi-Fi/VPN profile with these criteria would use; warns when several match',
      )
      .option('--issuer <ca...>', 'a CA in the chain: SHA-1 thumbprint, subject DN or CN (any one)')
      .option('--eku <eku...>', 'EKU OID or name, e.g. clientAuth (any one)')
      .option('--template <name-or-oid>', 'Microsoft certificate template name or OID')
      .addOption(storeOption('the store searched').default('My'))
      .addOption(scopeOption().default('device'))
      .option('--no-any-purpose', 'with --eku: exclude certificates with anyExtendedKeyUsage')
      .option('--no-all-purpose', 'with --eku: exclude certificates without an EKU extension')
      .option('--json', 'print one JSON document'),
  )
    .addHelpText(
      'after',
      '\nWhen several certificates match, the most recently issued is shown as chosen; Windows does not\ndocument its choice, so the warning is the point: narrow the filter. Exit 16 when none matches.',
    )
    .action(
      async (
        o: AgentCliOptions & {
          issuer?: string[];
          eku?: string[];
          template?: string;
          store: StoreName;
          scope: Scope;
          anyPurpose: boolean;
          allPurpose: boolean;
          json?: boolean;
        },
      ) => {
        await withAgent(o, async (agent) => {
          const s = selectCertificate(agent, {
            store: o.store,
            scope: o.scope,
            anyPurpose: o.anyPurpose,
            allPurpose: o.allPurpose,
            ...(o.issuer ? { issuers: o.issuer } : {}),
            ...(o.eku ? { ekus: o.eku } : {}),
            ...(o.template !== undefined ? { template: o.template } : {}),
          });
          out(o.json ? `${JSON.stringify(s, null, 2)}\n` : renderSelection(s));
          if (s.warning) process.stderr.write(`certpost: warning: ${s.warning}\n`);
          if (s.chosen === null)
            throw new CliError('no certificate matches these criteria', EXIT.notFound);
        });
      },
    );
}
