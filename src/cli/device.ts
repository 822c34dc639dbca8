/**
 * `certpost device …`: the device agent from the command line.
 *
 * - `device exec --state DIR < server-message.xml > reply.xml` applies one SyncML message from a
 *   server to the device whose state is in DIR (created when missing) and writes the device's
 *   reply (a Status for the header and every command, Results for every Get); nothing is
 *   written when the message carried only Statuses. Background work the message started (a
 *   SCEP enrollment) then runs as far as it can now; PENDING polls wait for a later `exec` or
 *   `run`. This interface is stable: outside checks and captured-message replays use it.
 * - `device run --state DIR` keeps the agent running its background work on schedule.
 * - `device show --state DIR [--json]` lists stores, keys and enrollments.
 *
 * Hello PINs come from `--pin-file` or `CERTPOST_HELLO_PIN`; a PKCS#11 token acts as the TPM
 * with `--tpm-module` and `--tpm-token` (PIN: `--tpm-pin-file` or `CERTPOST_TPM_PIN`); RetryDelay minutes last
 * `CERTPOST_DEVICE_MINUTE_MS` ms (60000; tests shorten them).
 */
import { unenroll } from '../device/mdm-client.ts';
import { listenForPush } from '../device/push.ts';
import { parseListen } from '../server/serve.ts';
import { enrollDevice } from '../device/mdm-enroll.ts';
import { enrollmentInputs, readSecretFile } from './io.ts';
import { Command } from 'commander';
import { DeviceAgent, type DeviceOptions } from '../device/agent.ts';
import { isDeviceError } from '../device/errors.ts';
import type { PinSource } from '../device/keys.ts';
import { openTpm } from '../device/tpm.ts';
import { SCEP_STATUS, type CertificateEntry } from '../device/state.ts';
import { inspectCertificate } from '../pki/x509.ts';
import { CliError, DEVICE_EXIT, EXIT } from './exit-codes.ts';

export interface AgentCliOptions {
  state: string;
  pinFile?: string;
  tpmModule?: string;
  tpmToken?: string;
  tpmPinFile?: string;
}

/** The options every command on a device state takes (`--state`, PIN and TPM sources). */
export function stateOption(cmd: Command): Command {
  return cmd
    .option(
      '--state <dir>',
      'the device state directory (created when missing)',
      process.env['CERTPOST_DEVICE_STATE'] ?? './device-state',
    )
    .option(
      '--pin-file <file>',
      'Windows Hello PIN, first line of a file (else CERTPOST_HELLO_PIN)',
    )
    .option(
      '--tpm-module <path>',
      'PKCS#11 module acting as the TPM (tpm2-pkcs11, SoftHSM2)',
      process.env['CERTPOST_TPM_MODULE'],
    )
    .option('--tpm-token <label>', 'token label in that module', process.env['CERTPOST_TPM_TOKEN'])
    .option(
      '--tpm-pin-file <file>',
      "the token's user PIN, first line of a file (else CERTPOST_TPM_PIN)",
    );
}

function pinSource(o: AgentCliOptions): PinSource {
  return async () => {
    if (o.pinFile) return await readSecretFile(o.pinFile);
    return process.env['CERTPOST_HELLO_PIN'];
  };
}

function agentOptions(o: AgentCliOptions): DeviceOptions {
  const minute = Number(process.env['CERTPOST_DEVICE_MINUTE_MS'] ?? 60_000);
  if (!Number.isFinite(minute) || minute <= 0)
    throw new CliError('CERTPOST_DEVICE_MINUTE_MS must be a positive number', EXIT.usage);
  return { pin: pinSource(o), minuteMs: minute };
}

async function openTpmOption(o: AgentCliOptions) {
  if (!o.tpmModule && !o.tpmToken) return undefined;
  if (!o.tpmModule || !o.tpmToken)
    throw new CliError('--tpm-module and --tpm-token go together', EXIT.usage);
  const pin = o.tpmPinFile ? await readSecretFile(o.tpmPinFile) : process.env['CERTPOST_TPM_PIN'];
  return openTpm({ module: o.tpmModule, token: o.tpmToken, ...(pin ? { pin } : {}) });
}

/** Opens the device of `--state` (and its TPM), runs `f`, closes both. */
export async function withAgent<T>(
  o: AgentCliOptions,
  f: (a: DeviceAgent) => Promise<T>,
): Promise<T> {
  const tpm = await openTpmOption(o);
  try {
    let agent: DeviceAgent;
    try {
      agent = await DeviceAgent.open(o.state, { ...agentOptions(o), ...(tpm ? { tpm } : {}) });
    } catch (e) {
      if (isDeviceError(e)) throw new CliError(e.message, DEVICE_EXIT[e.code]);
      throw e;
    }
    try {
      return await f(agent);
    } finally {
      await agent.close();
    }
  } finally {
    await tpm?.close();
  }
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const STATUS_NAMES: Readonly<Record<number, string>> = {
  [SCEP_STATUS.ok]: 'installed',
  [SCEP_STATUS.pending]: 'pending',
  [SCEP_STATUS.failed]: 'failed',
  [SCEP_STATUS.unknown]: 'in progress',
};

/** One certificate of a store as `device show` and `store list` report it (stable JSON). */
export function certificateSummary(agent: DeviceAgent, c: CertificateEntry) {
  const info = inspectCertificate(agent.certificates.certificate(c));
  const key = c.keyId ? agent.keys.find(c.keyId) : undefined;
  return {
    scope: c.scope,
    store: c.store,
    thumbprint: c.thumbprint,
    subject: info.subject,
    issuer: info.issuer,
    notAfter: info.notAfter,
    source: c.source,
    ...(key
      ? {
          key: {
            provider: key.provider,
            exportable: key.exportable,
            ...(key.container ? { container: key.container } : {}),
          },
        }
      : {}),
  };
}

/** {@link certificateSummary} as one line of text. */
export function summaryLine(c: ReturnType<typeof certificateSummary>): string {
  return `${c.scope}/${c.store}  ${c.thumbprint}  ${c.subject}  until ${c.notAfter}  [${c.source.kind}${c.source.id ? ` ${c.source.id}` : ''}${c.key ? `, key: ${c.key.provider}` : ''}]`;
}

function describe(agent: DeviceAgent) {
  const data = agent.store.data;
  return {
    device: data.device,
    certificates: data.certificates.map((c) => certificateSummary(agent, c)),
    scep: data.scep.map((e) => ({
      scope: e.scope,
      csp: e.csp,
      id: e.id,
      status: e.status,
      state: STATUS_NAMES[e.status] ?? String(e.status),
      errorCode: e.errorCode,
      ...(e.error ? { error: e.error } : {}),
      ...(e.thumbprint ? { thumbprint: e.thumbprint } : {}),
      ...(e.nextAttemptAt ? { nextAttemptAt: e.nextAttemptAt } : {}),
      ...(e.respondentServerUrl ? { server: e.respondentServerUrl } : {}),
    })),
    pfx: data.pfx,
  };
}

export function deviceCommands(root: Command, out: (s: string) => void): void {
  const device = root
    .command('device')
    .description('the device agent: certificate stores, keys, the certificate CSPs over OMA-DM');

  stateOption(
    device
      .command('exec')
      .description(
        'apply one SyncML message from stdin to the device and write its reply to stdout',
      )
      .option('--no-background', 'do not run the work the message started (SCEP enrollments)'),
  ).action(async (o: AgentCliOptions & { background: boolean }) => {
    const message = await readStdin();
    await withAgent(o, async (agent) => {
      const reply = await agent.handle(message);
      if (reply !== undefined) out(reply.endsWith('\n') ? reply : `${reply}\n`);
      if (o.background) await agent.runDue();
    });
  });

  stateOption(
    device
      .command('run')
      .description(
        'run the background work on schedule: SCEP requests and PENDING polls, MDM sessions at the poll interval',
      )
      .option('--until-idle', 'exit when nothing is scheduled any more')
      .option(
        '--push <host:port>',
        'listen for server notifications here (loopback; port 0 picks one): the server can start a session at once',
      ),
  ).action(async (o: AgentCliOptions & { untilIdle?: boolean; push?: string }) => {
    await withAgent(o, async (agent) => {
      const listen = o.push ? parseListen(o.push) : undefined;
      const push = listen
        ? await listenForPush(agent, {
            host: listen.host,
            port: listen.port,
            onError: (e) =>
              process.stderr.write(`certpost: push session failed: ${(e as Error).message}\n`),
          })
        : undefined;
      if (push) process.stderr.write(`listening for push at ${push.url}\n`);
      const signal = { stop: false };
      const onSignal = () => {
        signal.stop = true;
      };
      process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
      while (!signal.stop) {
        await agent.runDue();
        const next = agent.nextDueAt();
        if (!next && o.untilIdle) break;
        const wait = next ? Math.max(0, next.getTime() - Date.now()) : 1000;
        await new Promise((r) => setTimeout(r, Math.min(wait, 1000)));
      }
      await push?.close();
    });
  });

  stateOption(
    device
      .command('enroll')
      .description(
        'enroll this device with a Windows MDM server (MS-MDE2: discovery, policy, enrollment)',
      )
      .requiredOption('--server <url>', 'the server, e.g. https://mdm.example.com')
      .option('--user <upn>', 'the user enrolling (user@domain)', 'device@certpost.invalid')
      .option(
        '--token-file <file>',
        'the enrollment token (certpost mdm token create), first line of the file; or CERTPOST_ENROLLMENT_TOKEN',
      )
      .option(
        '--ca-file <file>',
        'PEM roots to trust for the server before enrollment brings its root',
      )
      .option('--json', 'print one JSON document'),
  )
    .addHelpText(
      'after',
      '\nAfterwards "certpost device sync" runs a management session, "certpost device run" keeps polling.',
    )
    .action(
      async (
        o: AgentCliOptions & {
          server: string;
          user: string;
          tokenFile?: string;
          caFile?: string;
          json?: boolean;
        },
      ) => {
        const inputs = await enrollmentInputs(o);
        await withAgent(o, async (agent) => {
          try {
            const r = await enrollDevice(agent, {
              server: o.server,
              user: o.user,
              token: inputs.token ?? '',
              ca: inputs.ca ?? [],
            });
            out(
              o.json
                ? `${JSON.stringify(r, null, 2)}\n`
                : `enrolled as ${r.serverDeviceId}; management server ${r.managementUrl}\n`,
            );
          } catch (e) {
            if (isDeviceError(e)) throw new CliError(e.message, DEVICE_EXIT[e.code]);
            throw e;
          }
        });
      },
    );

  stateOption(
    device
      .command('unenroll')
      .description(
        'leave MDM: tell the server, then drop the MDM certificate and what management installed',
      )
      .option('--json', 'print one JSON document'),
  ).action(async (o: AgentCliOptions & { json?: boolean }) => {
    await withAgent(o, async (agent) => {
      try {
        const r = await unenroll(agent);
        out(
          o.json
            ? `${JSON.stringify(r)}\n`
            : `unenrolled; ${r.removed} certificate(s) removed${r.told ? '' : ' (the server could not be told)'}\n`,
        );
      } catch (e) {
        if (isDeviceError(e)) throw new CliError(e.message, DEVICE_EXIT[e.code]);
        throw e;
      }
    });
  });

  stateOption(
    device
      .command('sync')
      .description('run one OMA-DM session with the MDM server this device enrolled with, now')
      .option('--json', 'print one JSON document'),
  ).action(async (o: AgentCliOptions & { json?: boolean }) => {
    await withAgent(o, async (agent) => {
      let report;
      try {
        report = await agent.sync();
      } catch (e) {
        if (isDeviceError(e)) throw new CliError(e.message, DEVICE_EXIT[e.code]);
        throw e;
      }
      if (o.json) return out(`${JSON.stringify(report, null, 2)}\n`);
      const applied = Object.entries(report.commands)
        .map(([kind, n]) => `${n} ${kind}`)
        .join(', ');
      out(
        `session ${report.sessionId}: ${report.messages} server message(s)${applied ? `, applied ${applied}` : ', nothing to do'}\n`,
      );
    });
  });

  stateOption(
    device
      .command('show')
      .description('list the certificate stores, keys and enrollments')
      .option('--json', 'print one JSON document'),
  ).action(async (o: AgentCliOptions & { json?: boolean }) => {
    await withAgent(o, async (agent) => {
      const d = describe(agent);
      if (o.json) return out(`${JSON.stringify(d, null, 2)}\n`);
      const lines = [`device ${d.device.id} (${d.device.name})`];
      for (const c of d.certificates) lines.push(summaryLine(c));
      for (const e of d.scep)
        lines.push(
          `scep ${e.scope}/${e.id}: ${e.state}${e.error ? ` (${e.error})` : ''}${e.nextAttemptAt ? `, next attempt ${e.nextAttemptAt}` : ''}`,
        );
      out(`${lines.join('\n')}\n`);
    });
  });
}
