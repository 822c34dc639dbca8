/**
 * ClientCertificateInstall/PFXCertInstall/{UniqueID} (MS-MDM CSP reference; Device and User;
 * omadm-reference.md §3.3): installs a certificate with its private key from a PFX.
 *
 * The parameters are plain nodes the server adds first (in one Atomic, PFXCertBlob last):
 * `KeyLocation` (1 TPM or fail, 2 TPM else software, 3 software, 4 Hello; default 3),
 * `ContainerName` (required for 4), `PFXCertPassword`, `PFXCertPasswordEncryptionType` (0
 * clear; 1 a CMS EnvelopedData, base64, encrypted to the device's MDM client certificate; 2
 * encrypted to a certificate of the store named by `PFXCertPasswordEncryptionStore`) and
 * `PFXKeyExportable` (true is allowed only with KeyLocation 3, the DDF's DependsOn; when absent,
 * the DDF's default true with KeyLocation 3 and false with any other). Adding `PFXCertBlob`
 * installs; replacing it reinstalls. With KeyLocation 1 and 2 the key goes into the TPM
 * (keys.ts says when 2 falls back to software).
 *
 * What is installed: the certificate that has the PFX's key goes to My (scope of the URI) with
 * the key; other CA certificates of the PFX go to CA; a root in the PFX is never trusted
 * because it rode along (Root is for RootCATrustedCertificates). `Thumbprint` reads the SHA-1
 * of the installed certificate, `Status` the HRESULT of the last install (0 = success).
 * A failed install changes nothing but `Status`, and its command gets 400 (bad parameters) or
 * 500. The clear password is forgotten once the install is done. Delete removes the
 * certificate and its key.
 */
import type { KeyObject } from 'node:crypto';
import { decryptEnvelopedData } from '../../pki/cms.ts';
import { isPkiError } from '../../pki/errors.ts';
import { planInstallation } from '../../pki/install-plan.ts';
import { parsePkcs12 } from '../../pki/pkcs12.ts';
import { DeviceError, errorCodeOf, isDeviceError } from '../errors.ts';
import type { KeyLocation, KeyVault } from '../keys.ts';
import type { DeviceStateData, PfxInstall, Scope } from '../state.ts';
import type { CertificateStores } from '../stores.ts';
import { STATUS, type CspHooks, type ManagementTree } from '../tree.ts';
import { parseCspUri } from './uri.ts';

export interface PfxContext {
  readonly state: () => DeviceStateData;
  readonly tree: () => ManagementTree;
  readonly keys: KeyVault;
  readonly stores: CertificateStores;
  /** Key-derivation budget of one PFX read (pki/pkcs12.ts `maxIterations`; default its own). */
  readonly maxIterations?: number;
}

interface PfxUri {
  readonly scope: Scope;
  readonly id: string;
  /** The install node's URI. */
  readonly base: string;
  readonly leaf?: string;
}

function pfxUri(uri: string): PfxUri | undefined {
  const u = parseCspUri(uri);
  if (u?.csp !== 'ClientCertificateInstall' || u.path[0] !== 'PFXCertInstall') return undefined;
  const id = u.path[1];
  if (id === undefined || u.path.length > 3) return undefined;
  const base = uri.split('/').slice(0, 7).join('/');
  return { scope: u.scope, id, base, ...(u.path[2] !== undefined ? { leaf: u.path[2] } : {}) };
}

/** The clear password: UTF-8 text, or UTF-16LE when it looks like it (Windows callers). */
function decodePassword(bytes: Uint8Array): string {
  const utf16 =
    bytes.length >= 2 && bytes.length % 2 === 0 && bytes.every((b, i) => i % 2 === 0 || b === 0);
  const text = Buffer.from(bytes).toString(utf16 ? 'utf16le' : 'utf8');
  return text.replace(/\0+$/, '');
}

export function pfxInstallHooks(ctx: PfxContext): CspHooks {
  const param = (base: string, name: string) => ctx.tree().value(`${base}/${name}`);
  const records = () => ctx.state().pfx;
  const recordOf = (p: PfxUri) => records().find((r) => r.scope === p.scope && r.id === p.id);
  const installedOf = (p: PfxUri) => ctx.stores.installedBy(p.scope, 'pfx', p.id);

  function setRecord(p: PfxUri, r: Omit<PfxInstall, 'scope' | 'id'>): void {
    const state = ctx.state();
    state.pfx = [
      ...state.pfx.filter((x) => !(x.scope === p.scope && x.id === p.id)),
      { scope: p.scope, id: p.id, ...r },
    ];
  }

  async function password(p: PfxUri): Promise<string | undefined> {
    const given = param(p.base, 'PFXCertPassword');
    const type = Number(param(p.base, 'PFXCertPasswordEncryptionType') ?? '0');
    if (type === 0 || given === undefined) return given;
    const envelope = Buffer.from(given.replace(/\s+/g, ''), 'base64');
    // Type 1: the MDM client certificate (WSTEP); type 2: a certificate of the named store.
    const storeName = (param(p.base, 'PFXCertPasswordEncryptionStore') ?? 'My').toUpperCase();
    const candidates = ctx.stores
      .all()
      .filter(
        (c) =>
          c.keyId !== undefined &&
          (type === 1 ? c.source.kind === 'wstep' : c.store.toUpperCase() === storeName),
      );
    for (const c of candidates) {
      try {
        const key = await ctx.keys.open(c.keyId!);
        const opened = await decryptEnvelopedData(envelope, {
          certificate: ctx.stores.certificate(c),
          key,
        });
        return decodePassword(opened.content);
      } catch (e) {
        if (isDeviceError(e) && e.code.startsWith('ERR_DEVICE_PIN')) throw e;
      }
    }
    throw new DeviceError(
      'ERR_DEVICE_PFX_PASSWORD',
      type === 1
        ? 'the password is not encrypted to this device’s MDM certificate'
        : `no certificate of store ${storeName} decrypts the password`,
    );
  }

  async function install(p: PfxUri, blob: string): Promise<void> {
    const location = Number(param(p.base, 'KeyLocation') ?? '3') as KeyLocation;
    const container = param(p.base, 'ContainerName');
    const exportableParam = param(p.base, 'PFXKeyExportable');
    const exportable = exportableParam === undefined ? location === 3 : exportableParam === 'true';
    ctx.keys.importProviderFor(location, { exportable, container }); // before any work
    let contents;
    try {
      contents = await parsePkcs12(
        Buffer.from(blob.replace(/\s+/g, ''), 'base64'),
        await password(p),
        ctx.maxIterations === undefined ? {} : { maxIterations: ctx.maxIterations },
      );
    } catch (e) {
      if (!isPkiError(e)) throw e;
      const wrong = ['ERR_PKI_BAD_PASSWORD', 'ERR_PKI_PASSWORD_REQUIRED', 'ERR_PKI_MAC_MISMATCH'];
      throw new DeviceError(
        wrong.includes(e.code) ? 'ERR_DEVICE_PFX_PASSWORD' : 'ERR_DEVICE_PFX_MALFORMED',
        `cannot read the PFX: ${e.message}`,
        { cause: e },
      );
    }
    const plan = planInstallation(
      {
        certificates: contents.certificates.map((c) => c.certificate),
        keys: contents.keys,
      },
      { scope: p.scope },
    );
    const identity = plan.entries.find((e) => e.key !== undefined);
    if (!identity?.key)
      throw new DeviceError('ERR_DEVICE_PFX_MALFORMED', 'the PFX has no key with its certificate');
    // The key first (the step that can fail), then the state changes, which cannot.
    const stored = await ctx.keys.importKey(identity.key.key as KeyObject, location, {
      exportable,
      ...(container !== undefined ? { container } : {}),
    });
    for (const old of installedOf(p)) ctx.stores.remove(old); // Replace: the previous one goes
    const source = { kind: 'pfx', id: p.id, uri: p.base } as const;
    const added = ctx.stores.add({
      scope: p.scope,
      store: 'My',
      der: identity.certificate.der,
      source,
      keyId: stored.entry.id,
    });
    if (!added) {
      ctx.keys.remove(stored.entry.id);
      throw new DeviceError('ERR_DEVICE_BAD_PARAMETER', 'this certificate is already installed');
    }
    for (const e of plan.entries)
      if (e !== identity && e.store === 'CA')
        ctx.stores.add({ scope: p.scope, store: 'CA', der: e.certificate.der, source });
    setRecord(p, { status: 0, thumbprint: added.thumbprint });
    ctx.tree().forget(`${p.base}/PFXCertPassword`);
  }

  /** Blobs written in the current group, installed when it settles (`{scope}/{id}` → URI). */
  const pending = new Map<string, PfxUri>();

  return {
    read(uri) {
      const p = pfxUri(uri);
      if (!p || (p.leaf !== 'Thumbprint' && p.leaf !== 'Status')) return undefined;
      const r = recordOf(p);
      if (!r) return undefined;
      if (p.leaf === 'Status') return String(r.status);
      return r.thumbprint && ctx.stores.find(p.scope, 'My', r.thumbprint) ? r.thumbprint : '';
    },
    beforeWrite(uri, value) {
      const p = pfxUri(uri);
      if (p?.leaf !== 'PFXCertBlob') return undefined;
      if (!/^[A-Za-z0-9+/=\s]+$/.test(value.data)) return STATUS.badRequest;
      pending.set(`${p.scope}/${p.id}`, p);
      return STATUS.ok;
    },
    async settle() {
      const todo = [...pending.values()];
      pending.clear();
      for (const p of todo) {
        const blob = ctx.tree().value(`${p.base}/PFXCertBlob`);
        if (blob === undefined) continue; // deleted later in the group
        try {
          await install(p, blob);
        } catch (e) {
          setRecord(p, { status: errorCodeOf(e) });
          if (!isDeviceError(e)) throw e;
          return {
            uri: `${p.base}/PFXCertBlob`,
            status:
              e.code === 'ERR_DEVICE_BAD_PARAMETER' ? STATUS.badRequest : STATUS.commandFailed,
          };
        }
      }
      return undefined;
    },
    restore() {
      pending.clear();
    },
    beforeDelete(uri) {
      const p = pfxUri(uri);
      if (!p || p.leaf !== undefined) return undefined;
      pending.delete(`${p.scope}/${p.id}`);
      for (const c of installedOf(p)) ctx.stores.remove(c);
      const state = ctx.state();
      state.pfx = state.pfx.filter((r) => r !== recordOf(p));
      return STATUS.ok;
    },
  };
}
