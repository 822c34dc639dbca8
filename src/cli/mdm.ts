/**
 * `certpost mdm …`: Windows MDM administration over a data directory: enrollment tokens, the
 * enrolled devices, and a device's command queue. The operations are server/mdm-admin.ts's,
 * shared with the admin API; here is only the command line around them.
 */
import { Option, type Command } from 'commander';
import { readPki } from '../pki/read.ts';
import * as mdm from '../server/mdm-admin.ts';
import { pushDevices } from '../server/mdm-push.ts';
import * as profiles from '../server/mdm-profiles.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { dataOptions, op, parseDuration, withContext, type DataOptions } from './admin.ts';
import { readInput, readSecretFile } from './io.ts';

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

export function mdmCommands(root: Command, out: (s: string) => void): void {
  const group = root
    .command('mdm')
    .description('Windows MDM: enrollment tokens, enrolled devices, device commands');

  const token = group.command('token').description('tokens devices enroll with (MS-MDE2)');
  dataOptions(
    token
      .command('create')
      .description('create an enrollment token; printed once, stored as a SHA-256 hash')
      .option('--user <upn>', 'the user devices enrolled with it belong to (user@domain)')
      .option('--uses <n>', 'how many devices may enroll with it', '1')
      .option('--ttl <duration>', 'lifetime, e.g. 24h, 7d', '7d'),
  )
    .addHelpText(
      'after',
      '\nA device enrolls with: certpost device enroll --server URL --token TOKEN [--user UPN]',
    )
    .action(async (o: DataOptions & { user?: string; uses: string; ttl: string }) => {
      const ttlMs = parseDuration(o.ttl);
      await withContext(o, async (ctx) => {
        const created = await op(() =>
          mdm.createEnrollmentToken(ctx, 'cli', {
            uses: Number(o.uses),
            ttlMs,
            ...(o.user !== undefined ? { user: o.user } : {}),
          }),
        );
        out(o.json ? json(created) : `${created.token}\n`);
      });
    });
  dataOptions(
    token.command('list').description('every enrollment token (never the secret)'),
  ).action(async (o: DataOptions) => {
    await withContext(o, async (ctx) => {
      const r = await mdm.listEnrollmentTokens(ctx);
      out(
        o.json
          ? json(r)
          : r.tokens
              .map((t) => `${t.id}  ${t.usesLeft} left  until ${t.expiresAt}  ${t.user ?? '-'}\n`)
              .join(''),
      );
    });
  });
  dataOptions(
    token.command('revoke').description('no more enrollments with this token').argument('<id>'),
  ).action(async (id: string, o: DataOptions) => {
    await withContext(o, async (ctx) => {
      const r = await op(() => mdm.revokeEnrollmentToken(ctx, 'cli', id));
      out(o.json ? json(r) : `revoked ${id}\n`);
    });
  });

  dataOptions(group.command('devices').description('enrolled devices')).action(
    async (o: DataOptions) => {
      await withContext(o, async (ctx) => {
        const r = await mdm.listDevices(ctx, { limit: 10_000 });
        out(
          o.json
            ? json(r)
            : r.devices
                .map(
                  (d) =>
                    `${d.id}  ${d.name}  ${d.user ?? '-'}  seen ${d.lastSeenAt ?? 'never'}${d.unenrolledAt ? '  (unenrolled)' : ''}\n`,
                )
                .join(''),
        );
      });
    },
  );

  dataOptions(
    group
      .command('device')
      .description('one device: what it reported, and its commands with their outcome')
      .argument('<id>')
      .option('--limit <n>', 'commands to show, newest first', '50'),
  ).action(async (id: string, o: DataOptions & { limit: string }) => {
    await withContext(o, async (ctx) => {
      const r = await op(() => mdm.showDevice(ctx, id, { limit: Number(o.limit) }));
      if (o.json) return out(json(r));
      const d = r.device;
      out(
        `${d.id}  ${d.name}\n  user ${d.user ?? '-'}  enrolled ${d.enrolledAt}  seen ${d.lastSeenAt ?? 'never'}\n`,
      );
      for (const [k, v] of Object.entries(d.info)) out(`  ${k}: ${v}\n`);
      for (const c of r.certificates)
        out(`  certificate ${c.thumbprint}  ${c.subject}  until ${c.notAfter}  at ${c.uri}\n`);
      for (const c of r.commands)
        out(`  ${c.id}  ${c.command.kind}  ${c.status ?? (c.sentAt ? 'sent' : 'queued')}\n`);
    });
  });

  dataOptions(
    group
      .command('push')
      .description(
        'ask devices to open a session now (their push channel), instead of at their next poll',
      )
      .argument('<device...>'),
  ).action(async (devices: string[], o: DataOptions) => {
    await withContext(o, async (ctx) => {
      const r = await pushDevices(ctx.store, devices);
      out(o.json ? json(r) : `${r.pushed} notified, ${r.waiting} will get it at their next poll\n`);
    });
  });

  dataOptions(
    group
      .command('delete-certificate')
      .description('remove a certificate the device reported (its inventory), whoever installed it')
      .argument('<device>')
      .argument('<thumbprint>', 'SHA-1 of the certificate'),
  ).action(async (device: string, thumbprint: string, o: DataOptions) => {
    await withContext(o, async (ctx) => {
      const r = await op(() => mdm.deleteDeviceCertificate(ctx, 'cli', device, thumbprint));
      out(o.json ? json(r) : `queued: ${r.nodes.map((n) => `Delete ${n}`).join(', ')}\n`);
    });
  });

  dataOptions(
    group
      .command('run-command')
      .description('queue SyncML commands (Add, Replace, Delete, Get, Exec, Atomic) for a device')
      .argument('<device>')
      .requiredOption('--payload <file>', 'the commands as SyncBody XML ("-" reads stdin)'),
  )
    .addHelpText(
      'after',
      '\nThe device gets them in its next session; "certpost mdm device ID" shows their status and results.\nExample payload: <Get><CmdID>1</CmdID><Item><Target><LocURI>./DevDetail/SwV</LocURI></Target></Item></Get>',
    )
    .action(async (device: string, o: DataOptions & { payload: string }) => {
      const payload = Buffer.from(await readInput(o.payload)).toString('utf8');
      await withContext(o, async (ctx) => {
        const r = await op(() => mdm.runCommand(ctx, 'cli', device, payload));
        out(o.json ? json(r) : `${r.commands.join('\n')}\n`);
      });
    });

  const profile = root
    .command('profile')
    .description('MDM certificate profiles: trusted certificates, SCEP enrollments, assignments');
  dataOptions(
    profile
      .command('create')
      .description('create a profile (then: certpost profile assign NAME --all)')
      .argument('<name>')
      .addOption(
        new Option('--kind <kind>', 'what it delivers')
          .choices(['trusted', 'scep', 'pfx'])
          .makeOptionMandatory(),
      )
      .option('--cert <file>', 'trusted: the certificate (DER, PEM, .p7b with one certificate)')
      .option(
        '--store <store>',
        'trusted: Root, CA, TrustedPublisher, TrustedPeople or UntrustedCertificates',
      )
      .option('--scope <scope>', 'device or user (default: device; user for pfx)')
      .option('--pfx <file>', 'pfx: deliver this PFX (an imported identity) instead of making one')
      .option(
        '--pfx-password-file <file>',
        'the password of --pfx (first line); kept sealed for the CA',
      )
      .option(
        '--settings <file>',
        'the settings as a JSON file (scep: subject, subjectAltNames, ekus, keyProtection, …)',
      ),
  )
    .addHelpText(
      'after',
      `
Examples:
  certpost profile create corp-root --kind trusted --cert root.cer --store Root
  certpost profile create wifi --kind scep --settings wifi.json
    wifi.json: {"subject": "CN={{DeviceName}},O=Contoso",
                "subjectAltNames": [{"type": "upn", "value": "{{UserPrincipalName}}"}],
                "ekus": ["1.3.6.1.5.5.7.3.2"], "keyProtection": 2, "retryDelay": 5, "retryCount": 3}
  certpost profile create smime --kind pfx --settings smime.json
    smime.json: {"issuanceProfile": "smime", "keyLocation": 3, "exportable": true}
    (the server makes the key and certificate, keeps the key in escrow, and sends the PFX with
     its password encrypted to the device's MDM certificate; user scope by default)
Template variables: {{DeviceId}} {{DeviceName}} {{HardwareId}} {{UserPrincipalName}} {{EmailAddress}}`,
    )
    .action(
      async (
        name: string,
        o: DataOptions & {
          kind: 'trusted' | 'scep' | 'pfx';
          cert?: string;
          store?: string;
          pfx?: string;
          pfxPasswordFile?: string;
          scope?: string;
          settings?: string;
        },
      ) => {
        let settings: Record<string, unknown> = {};
        if (o.settings !== undefined) {
          try {
            settings = JSON.parse(
              Buffer.from(await readInput(o.settings)).toString('utf8'),
            ) as Record<string, unknown>;
          } catch (e) {
            throw new CliError(`--settings: ${(e as Error).message}`, EXIT.input);
          }
        }
        if (o.kind === 'trusted') {
          if (o.cert === undefined)
            throw new CliError('a trusted profile needs --cert', EXIT.usage);
          const certs = (await readPki(await readInput(o.cert))).certificates;
          if (certs.length !== 1)
            throw new CliError(
              `--cert must hold one certificate, it holds ${certs.length}`,
              EXIT.input,
            );
          settings = {
            ...settings,
            certificate: Buffer.from(certs[0]!.der).toString('base64'),
            ...(o.store !== undefined ? { store: o.store } : {}),
          };
        }
        if (o.pfx !== undefined) {
          if (o.kind !== 'pfx') throw new CliError('--pfx is for --kind pfx', EXIT.usage);
          if (o.pfxPasswordFile === undefined)
            throw new CliError('--pfx needs --pfx-password-file', EXIT.usage);
          settings = {
            ...settings,
            pfx: Buffer.from(await readInput(o.pfx)).toString('base64'),
            password: await readSecretFile(o.pfxPasswordFile),
          };
        }
        settings = { ...(o.scope !== undefined ? { scope: o.scope } : {}), ...settings };
        await withContext(o, async (ctx) => {
          const r = await op(() =>
            profiles.createProfile(ctx, 'cli', { name, kind: o.kind, settings }),
          );
          out(o.json ? json(r) : `${r.id}  ${r.name}  ${r.kind}\n`);
        });
      },
    );
  dataOptions(profile.command('list').description('every profile with its assignments')).action(
    async (o: DataOptions) => {
      await withContext(o, async (ctx) => {
        const r = await profiles.listProfiles(ctx);
        out(
          o.json
            ? json(r)
            : r.profiles
                .map(
                  (p) =>
                    `${p.name}  ${p.kind}  ${p.assignments.map((a) => (a.kind === 'all' ? 'all' : `${a.kind}:${a.target}`)).join(', ') || '(not assigned)'}\n`,
                )
                .join(''),
        );
      });
    },
  );

  for (const verb of ['assign', 'unassign'] as const) {
    dataOptions(
      profile
        .command(verb)
        .description(
          verb === 'assign'
            ? 'assign a profile: devices get it in their next session'
            : 'unassign a profile: devices remove it in their next session',
        )
        .argument('<profile>', 'profile name')
        .option('--device <id>', 'one device')
        .option('--user <upn>', 'every device of this user')
        .option('--all', 'every device'),
    ).action(
      async (name: string, o: DataOptions & { device?: string; user?: string; all?: boolean }) => {
        const given = [o.device !== undefined, o.user !== undefined, o.all === true].filter(
          Boolean,
        ).length;
        if (given !== 1)
          throw new CliError('give exactly one of --device, --user, --all', EXIT.usage);
        const target: profiles.AssignTarget =
          o.device !== undefined
            ? { kind: 'device', id: o.device }
            : o.user !== undefined
              ? { kind: 'user', upn: o.user }
              : { kind: 'all' };
        await withContext(o, async (ctx) => {
          const run = (): Promise<{ profile: string; target: string }> =>
            verb === 'assign'
              ? profiles.assignProfile(ctx, 'cli', name, target)
              : profiles.unassignProfile(ctx, 'cli', name, target);
          const r = await op(run);
          out(
            o.json
              ? json(r)
              : `${verb}ed ${r.profile} ${verb === 'assign' ? 'to' : 'from'} ${r.target}\n`,
          );
        });
      },
    );
  }

  dataOptions(
    profile
      .command('apply-defaults')
      .description(
        "create the default profiles — this CA's root into the device Root store, and a SCEP device certificate — and assign both to all devices",
      ),
  )
    .addHelpText(
      'after',
      '\nIdempotent: existing default profiles and assignments are kept. The SCEP profile asks for\nCN={{DeviceName}} with the DNS name {{HardwareId}}.device, clientAuth, a software key.',
    )
    .action(async (o: DataOptions) => {
      // Like serve, a fresh data directory gets its development CA here.
      await withContext(
        o,
        async (ctx) => {
          const r = await op(() => profiles.applyDefaults(ctx, 'cli'));
          out(
            o.json
              ? json(r)
              : r.profiles.map((p) => `${p.name}  ${p.kind}  assigned to all\n`).join(''),
          );
        },
        true,
      ); // like serve, a fresh data directory gets its development CA here
    });
}
