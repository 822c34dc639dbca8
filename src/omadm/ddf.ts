/**
 * Microsoft DDF files (OMA DM 1.2 Device Description Framework, `DM_DDF-V1_2.dtd`, with the
 * `MSFT:` extensions): the description of a CSP's part of the management tree. The device's
 * CSP tree is generated from these files (issue 4), so what a node accepts (its commands,
 * format, occurrence, dynamic names, allowed values) comes from Microsoft, not from a hand list.
 *
 * ```dtd
 * <!ELEMENT MgmtTree (VerDTD, Man?, Mod?, Node+)>
 * <!ELEMENT Node (NodeName, Path?, RTProperties?, DFProperties, (Node* | Value?))>
 * <!ELEMENT DFProperties (AccessType, DefaultValue?, Description?, DFFormat, Occurrence?,
 *   Scope?, DFTitle?, DFType, CaseSense?)>
 * ```
 * An empty `NodeName` is a dynamic node: its name is chosen by the server (`DFTitle` gives the
 * placeholder, e.g. `CertHash`). The DOCTYPE of these files names the DTD and a version
 * processing instruction only; it declares nothing we need and is removed before parsing.
 */
import { XMLParser } from 'fast-xml-parser';

export const DDF_FORMATS = [
  'node',
  'chr',
  'int',
  'bool',
  'b64',
  'bin',
  'xml',
  'null',
  'time',
  'date',
  'float',
] as const;
export type DdfFormat = (typeof DDF_FORMATS)[number];
export const DDF_ACCESS = ['Add', 'Delete', 'Exec', 'Get', 'Replace', 'Copy'] as const;
export type DdfAccess = (typeof DDF_ACCESS)[number];
export type DdfOccurrence = 'One' | 'ZeroOrOne' | 'ZeroOrMore' | 'OneOrMore' | 'ZeroOrN' | 'OneOrN';

export interface DdfAllowedValues {
  /** `ENUM`, `Range`, `RegEx`, `XSD`, `None`, … as the DDF says. */
  readonly kind: string;
  readonly values: readonly { readonly value: string; readonly description?: string }[];
  /** For `Range` and `RegEx`: the expression. */
  readonly expression?: string;
}

export interface DdfNode {
  /** The node name, or null for a dynamic node (any name the server chooses). */
  readonly name: string | null;
  /** For a dynamic node: the placeholder title (`CertHash`, `UniqueID`). */
  readonly title?: string;
  readonly access: ReadonlySet<DdfAccess>;
  readonly format: DdfFormat;
  readonly occurrence: DdfOccurrence;
  readonly scope: 'Permanent' | 'Dynamic' | undefined;
  readonly mime?: string;
  readonly caseSensitive: boolean;
  readonly defaultValue?: string;
  readonly description?: string;
  readonly allowedValues?: DdfAllowedValues;
  /** MSFT:DynamicNodeNaming, e.g. `ServerGeneratedUniqueIdentifier`. */
  readonly dynamicNaming?: string;
  readonly children: readonly DdfNode[];
}

/** A CSP root: where it is mounted (`./Device/Vendor/MSFT`) and its node. */
export interface DdfRoot {
  readonly path: string;
  readonly node: DdfNode;
}

type Ordered = Record<string, unknown>[];

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  trimValues: true,
  processEntities: true,
  htmlEntities: false,
});

/** Children of a preserveOrder element as `[name, children, attributes]` (text under `#text`). */
function entries(list: Ordered): [string, Ordered, Record<string, string>][] {
  return list.map((o) => {
    const name = Object.keys(o).find((k) => k !== ':@')!;
    return [
      name,
      (o[name] as Ordered | undefined) ?? [],
      (o[':@'] as Record<string, string> | undefined) ?? {},
    ];
  });
}

function child(list: Ordered, name: string): Ordered | undefined {
  return entries(list).find(([n]) => n === name)?.[1];
}

function text(list: Ordered | undefined): string | undefined {
  if (!list) return undefined;
  const t = list.map((o) => (typeof o['#text'] === 'string' ? o['#text'] : '')).join('');
  return t === '' ? undefined : t;
}

/** The name of the single empty element inside, e.g. `<DFFormat><chr /></DFFormat>` → `chr`. */
function marker(list: Ordered | undefined): string | undefined {
  return list ? entries(list).find(([n]) => n !== '#text')?.[0] : undefined;
}

/** MSFT:AllowedValues: `ValueType` ENUM (a list), Range/RegEx (one expression), Flag, None. */
function parseAllowed(props: Ordered): DdfAllowedValues | undefined {
  const found = entries(props).find(([n]) => n === 'MSFT:AllowedValues');
  if (!found) return undefined;
  const [, list, attrs] = found;
  const values = entries(list)
    .filter(([n]) => n === 'MSFT:Enum')
    .map(([, e]) => {
      const description = text(child(e, 'MSFT:ValueDescription'));
      return {
        value: text(child(e, 'MSFT:Value')) ?? '',
        ...(description !== undefined ? { description } : {}),
      };
    });
  const expression = values.length ? undefined : text(child(list, 'MSFT:Value'));
  return {
    kind: attrs['ValueType'] ?? 'None',
    values,
    ...(expression !== undefined ? { expression } : {}),
  };
}

function parseNode(list: Ordered): { node: DdfNode; path?: string } {
  const props = child(list, 'DFProperties') ?? [];
  const access = new Set<DdfAccess>();
  for (const [n] of entries(child(props, 'AccessType') ?? []))
    if ((DDF_ACCESS as readonly string[]).includes(n)) access.add(n as DdfAccess);
  const format = (marker(child(props, 'DFFormat')) ?? 'node') as DdfFormat;
  const name = text(child(list, 'NodeName'));
  const title = text(child(props, 'DFTitle'));
  const mime = text(child(child(props, 'DFType') ?? [], 'MIME'));
  const defaultValue = text(child(props, 'DefaultValue'));
  const description = text(child(props, 'Description'));
  const allowedValues = parseAllowed(props);
  const dynamicNaming = marker(child(props, 'MSFT:DynamicNodeNaming'));
  const scope = marker(child(props, 'Scope'));
  const path = text(child(list, 'Path'));
  const node: DdfNode = {
    name: name ?? null,
    ...(title !== undefined ? { title } : {}),
    access,
    format: (DDF_FORMATS as readonly string[]).includes(format) ? format : 'node',
    occurrence: (marker(child(props, 'Occurrence')) ?? 'One') as DdfOccurrence,
    scope: scope === 'Permanent' || scope === 'Dynamic' ? scope : undefined,
    ...(mime !== undefined ? { mime } : {}),
    caseSensitive: marker(child(props, 'CaseSense')) !== 'CIS',
    ...(defaultValue !== undefined ? { defaultValue } : {}),
    ...(description !== undefined ? { description } : {}),
    ...(allowedValues ? { allowedValues } : {}),
    ...(dynamicNaming !== undefined ? { dynamicNaming } : {}),
    children: entries(list)
      .filter(([n]) => n === 'Node')
      .map(([, c]) => parseNode(c).node),
  };
  return path !== undefined ? { node, path } : { node };
}

/** Parses a DDF document into its CSP roots (one per `<Node>` with a `<Path>`). */
export function parseDdf(xml: string): DdfRoot[] {
  const withoutDoctype = xml.replace(/<!DOCTYPE[^[>]*(?:\[[\s\S]*?\])?\s*>/, '');
  const doc = parser.parse(withoutDoctype) as Ordered;
  const tree = entries(doc).find(([n]) => n === 'MgmtTree')?.[1];
  if (!tree) throw new Error('not a DDF document: no MgmtTree');
  return entries(tree)
    .filter(([n]) => n === 'Node')
    .map(([, n]) => {
      const { node, path } = parseNode(n);
      if (path === undefined)
        throw new Error(`DDF root node ${node.name ?? '(dynamic)'} has no Path`);
      return { path, node };
    });
}

/** A node found for a URI, with the names given to its dynamic segments. */
export interface ResolvedNode {
  readonly node: DdfNode;
  /** Dynamic segment values by title, e.g. `{ CertHash: 'A1B2…' }`. */
  readonly dynamic: Readonly<Record<string, string>>;
}

/**
 * The segments of a management URI path, percent-decoded (OMA DM URIs escape as RFC 2396
 * does), or undefined when an escape is malformed (`%` without two hex digits): such a URI
 * names no node. A server sends the URIs, so this must not throw.
 */
export function uriSegments(path: string): string[] | undefined {
  try {
    return path.split('/').map(decodeURIComponent);
  } catch (e) {
    if (e instanceof URIError) return undefined;
    throw e;
  }
}

/**
 * Finds the DDF node for a management URI (`./Device/Vendor/MSFT/RootCATrustedCertificates/
 * Root/<hash>/EncodedCertificate`), or undefined when the DDFs describe no such node. A URI
 * without a scope prefix (`./Vendor/MSFT/…`) is the device scope (MS-MDM). Static names win
 * over a dynamic sibling; names compare case-insensitively where the DDF says CIS.
 */
export function resolveUri(roots: readonly DdfRoot[], uri: string): ResolvedNode | undefined {
  const normalised = uri.startsWith('./Vendor/') ? `./Device${uri.slice(1)}` : uri;
  for (const root of roots) {
    const prefix = `${root.path}/`;
    if (!normalised.startsWith(prefix)) continue;
    const segments = uriSegments(normalised.slice(prefix.length));
    if (segments?.[0] !== root.node.name) continue;
    let node = root.node;
    const dynamic: Record<string, string> = {};
    for (const seg of segments.slice(1)) {
      const named = node.children.find(
        (c) =>
          c.name !== null &&
          (c.caseSensitive ? c.name === seg : c.name.toLowerCase() === seg.toLowerCase()),
      );
      const next = named ?? node.children.find((c) => c.name === null);
      if (!next) return undefined;
      if (next.name === null) dynamic[next.title ?? 'name'] = seg;
      node = next;
    }
    return { node, dynamic };
  }
  return undefined;
}
