/**
 * OMA-DM commands for the certificate CSPs, as an MDM server sends them (omadm-reference.md
 * §3; the CSP pages' examples): trusted certificates (RootCATrustedCertificates), SCEP and PFX
 * installs (ClientCertificateInstall) as one Atomic with `Exec …/Enroll` last (design.md §3),
 * the Gets that read their outcome, and Deletes that remove them. Pure builders: CmdIDs are left
 * empty, the session assigns them (server-session.ts withIds).
 */
import { createHash } from 'node:crypto';
import type { Command, Item } from './syncml.ts';

export type CspScope = 'device' | 'user';
export type TrustedStore =
  'Root' | 'CA' | 'TrustedPublisher' | 'TrustedPeople' | 'UntrustedCertificates';

const prefix = (scope: CspScope) =>
  scope === 'user' ? './User/Vendor/MSFT' : './Device/Vendor/MSFT';

/** A node name as a LocURI segment: non-alphanumerics percent-encoded (MS-MDM §2.2.4.1). */
export function uriSegment(name: string): string {
  return encodeURIComponent(name).replace(
    /[!'()*~]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** Upper-case hex SHA-1 of a certificate: the `{CertHash}` node name. */
export function certHash(der: Uint8Array): string {
  return createHash('sha1').update(der).digest('hex').toUpperCase();
}

function leaf(target: string, data: string, format: string): Item {
  return { target, meta: { format }, data };
}

const command = (kind: 'Add' | 'Replace' | 'Delete' | 'Get' | 'Exec', items: Item[]): Command => ({
  kind,
  cmdId: '',
  items,
});

/** The RootCATrustedCertificates node of a certificate in a store. */
export function trustedCertificateUri(
  scope: CspScope,
  store: TrustedStore,
  der: Uint8Array,
): string {
  if (scope === 'user' && store === 'Root') throw new RangeError('there is no user Root store');
  return `${prefix(scope)}/RootCATrustedCertificates/${store}/${certHash(der)}`;
}

/**
 * Adds a certificate to a trusted store. `replace` sends Replace instead, for a node the device
 * already has (MS-MDM: Add on an existing node is 418; idempotent re-delivery uses Replace).
 */
export function addTrustedCertificate(
  scope: CspScope,
  store: TrustedStore,
  der: Uint8Array,
  o: { readonly replace?: boolean } = {},
): Command {
  return command(o.replace ? 'Replace' : 'Add', [
    leaf(
      `${trustedCertificateUri(scope, store, der)}/EncodedCertificate`,
      Buffer.from(der).toString('base64'),
      'b64',
    ),
  ]);
}

export function deleteTrustedCertificate(
  scope: CspScope,
  store: TrustedStore,
  der: Uint8Array,
): Command {
  return command('Delete', [{ target: trustedCertificateUri(scope, store, der) }]);
}

/** `?list=Struct` of a store: the thumbprints the device holds there (inventory). */
export function listStore(scope: CspScope, store: TrustedStore): Command {
  return command('Get', [
    { target: `${prefix(scope)}/RootCATrustedCertificates/${store}?list=Struct` },
  ]);
}

/** Parameters of ClientCertificateInstall/SCEP/{UniqueID}/Install (the DDF's nodes). */
export interface ScepInstall {
  readonly scope: CspScope;
  readonly id: string;
  /** SCEP server URLs, tried in order (ServerURL is a `;`-separated list). */
  readonly serverUrls: readonly string[];
  readonly challenge: string;
  /** X.500 distinguished name, e.g. `CN=device-1,O=Contoso`. */
  readonly subjectName: string;
  /** `Type+Value;…` as the DDF describes: 1 other, 2 RFC 822, 3 DNS, 11 UPN … */
  readonly subjectAlternativeNames?: string;
  /** EKU OIDs (EKUMapping is `+`-separated). */
  readonly ekus: readonly string[];
  /** KeyUsage bits: 0x80 digitalSignature, 0x20 keyEncipherment (Windows requires one of them). */
  readonly keyUsage: number;
  /** 1 TPM or fail, 2 TPM else software, 3 software, 4 Windows Hello. */
  readonly keyProtection: 1 | 2 | 3 | 4;
  readonly keyLength: 1024 | 2048 | 4096;
  readonly hashAlgorithm: 'SHA-1' | 'SHA-2' | 'SHA-1+SHA-2';
  /** SHA-1 of the CA certificate the device must find at GetCACert (hex). */
  readonly caThumbprint: string;
  /** Minutes between PENDING polls, and how many polls (Windows clamps 1–30). */
  readonly retryDelay?: number;
  readonly retryCount?: number;
  readonly templateName?: string;
  readonly validPeriod?: 'Days' | 'Months' | 'Years';
  readonly validPeriodUnits?: number;
  readonly containerName?: string;
}

/** The SCEP install node of an enrollment. */
export function scepUri(scope: CspScope, id: string): string {
  return `${prefix(scope)}/ClientCertificateInstall/SCEP/${uriSegment(id)}`;
}

/**
 * The SCEP enrollment as Windows wants it: one Atomic, every Install parameter added, then
 * `Exec Install/Enroll` last (the CSP page's example; design.md §3).
 */
export function scepInstall(p: ScepInstall): Command {
  const base = `${scepUri(p.scope, p.id)}/Install`;
  const chr = (name: string, v: string) => leaf(`${base}/${name}`, v, 'chr');
  const int = (name: string, v: number) => leaf(`${base}/${name}`, String(v), 'int');
  const items: Item[] = [
    chr('ServerURL', p.serverUrls.join(';')),
    chr('Challenge', p.challenge),
    chr('EKUMapping', p.ekus.join('+')),
    int('KeyUsage', p.keyUsage),
    chr('SubjectName', p.subjectName),
    int('KeyProtection', p.keyProtection),
    int('RetryDelay', p.retryDelay ?? 5),
    int('RetryCount', p.retryCount ?? 3),
    int('KeyLength', p.keyLength),
    chr('HashAlgorithm', p.hashAlgorithm),
    chr('CAThumbprint', p.caThumbprint.toUpperCase()),
  ];
  if (p.subjectAlternativeNames)
    items.push(chr('SubjectAlternativeNames', p.subjectAlternativeNames));
  if (p.templateName) items.push(chr('TemplateName', p.templateName));
  if (p.validPeriod) items.push(chr('ValidPeriod', p.validPeriod));
  if (p.validPeriodUnits !== undefined) items.push(int('ValidPeriodUnits', p.validPeriodUnits));
  if (p.containerName) items.push(chr('ContainerName', p.containerName));
  return {
    kind: 'Atomic',
    cmdId: '',
    commands: [
      command('Add', [{ target: scepUri(p.scope, p.id), meta: { format: 'node' } }]),
      ...items.map((i) => command('Add', [i])),
      command('Exec', [{ target: `${base}/Enroll` }]),
    ],
  };
}

/** Reads an enrollment's outcome: Status (1 ok, 2 pending, 16 failed, 32 unknown), ErrorCode, CertThumbprint. */
export function scepStatus(scope: CspScope, id: string): Command {
  const base = scepUri(scope, id);
  return command('Get', [
    { target: `${base}/Status` },
    { target: `${base}/ErrorCode` },
    { target: `${base}/CertThumbprint` },
  ]);
}

/** Removes an enrollment: its certificate and key go with it. */
export function deleteScep(scope: CspScope, id: string): Command {
  return command('Delete', [{ target: scepUri(scope, id) }]);
}

export interface PfxInstall {
  readonly scope: CspScope;
  readonly id: string;
  readonly pfx: Uint8Array;
  /** The PFX password: clear (type 0) or, for type 1, already the base64 CMS EnvelopedData. */
  readonly password: string;
  readonly passwordEncryptionType: 0 | 1;
  readonly keyLocation: 1 | 2 | 3 | 4;
  readonly exportable?: boolean;
  readonly containerName?: string;
}

export function pfxUri(scope: CspScope, id: string): string {
  return `${prefix(scope)}/ClientCertificateInstall/PFXCertInstall/${uriSegment(id)}`;
}

/** A PFX install: one Atomic, the parameters first, PFXCertBlob last (it installs). */
export function pfxInstall(p: PfxInstall): Command {
  const base = pfxUri(p.scope, p.id);
  const items: Item[] = [
    leaf(`${base}/KeyLocation`, String(p.keyLocation), 'int'),
    leaf(`${base}/PFXCertPasswordEncryptionType`, String(p.passwordEncryptionType), 'int'),
    leaf(`${base}/PFXCertPassword`, p.password, 'chr'),
  ];
  if (p.containerName) items.push(leaf(`${base}/ContainerName`, p.containerName, 'chr'));
  if (p.exportable !== undefined)
    items.push(leaf(`${base}/PFXKeyExportable`, String(p.exportable), 'bool'));
  items.push(leaf(`${base}/PFXCertBlob`, Buffer.from(p.pfx).toString('base64'), 'b64'));
  return {
    kind: 'Atomic',
    cmdId: '',
    commands: [
      command('Add', [{ target: base, meta: { format: 'node' } }]),
      ...items.map((i) => command('Add', [i])),
    ],
  };
}

export function pfxThumbprint(scope: CspScope, id: string): Command {
  return command('Get', [{ target: `${pfxUri(scope, id)}/Thumbprint` }]);
}

export function deletePfx(scope: CspScope, id: string): Command {
  return command('Delete', [{ target: pfxUri(scope, id) }]);
}

/**
 * The stores an inventory lists with `?list=StructData` (every certificate with its
 * EncodedCertificate): the trusted stores of both scopes, and the user's personal store
 * (CertificateStore MY/User, where user-installed certificates show).
 */
export const INVENTORY_STORES: readonly string[] = [
  ...(['Root', 'CA', 'TrustedPublisher', 'TrustedPeople', 'UntrustedCertificates'] as const).map(
    (s) => `./Device/Vendor/MSFT/RootCATrustedCertificates/${s}`,
  ),
  ...(['CA', 'TrustedPublisher', 'TrustedPeople', 'UntrustedCertificates'] as const).map(
    (s) => `./User/Vendor/MSFT/RootCATrustedCertificates/${s}`,
  ),
  './Vendor/MSFT/CertificateStore/MY/User',
];

/** One Get listing every inventory store (one item per store). */
export function inventoryGet(): Command {
  return command(
    'Get',
    INVENTORY_STORES.map((s) => ({ target: `${s}?list=StructData` })),
  );
}

/**
 * The certificates a `?list=StructData` answer names, as `{ uri of the {CertHash} node, DER }`,
 * and the stores it listed (so that a store now empty is known to be empty).
 */
export function readInventory(items: readonly Item[]): {
  stores: string[];
  certificates: { uri: string; der: Uint8Array }[];
} {
  const certificates: { uri: string; der: Uint8Array }[] = [];
  const stores = new Set<string>();
  for (const item of items) {
    const src = item.source ?? '';
    const store = INVENTORY_STORES.find((s) => src === s || src.startsWith(`${s}/`));
    if (!store) continue;
    stores.add(store);
    const m = /^(.*\/[0-9A-Fa-f]{40})\/EncodedCertificate$/.exec(src);
    if (m && item.data)
      certificates.push({ uri: m[1]!, der: new Uint8Array(Buffer.from(item.data, 'base64')) });
  }
  return { stores: [...stores], certificates };
}
