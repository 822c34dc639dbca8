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
import { attribute, child, childrenNamed, readXml, type XmlElement } from './xml.ts';

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

/** The namespace of Microsoft's `MSFT:` extensions to the DDF DTD. */
const MSFT_NS = 'http://schemas.microsoft.com/MobileDevice/DM';

const malformed = (message: string) => new Error(`not a DDF document: ${message}`);

/** The first child element named `name` (in no namespace unless `ns` says). */
const get = (e: XmlElement | undefined, name: string, ns = '') => e && child(e, ns, name);

/** An element's text, trimmed; absent or empty is undefined. */
function text(e: XmlElement | undefined): string | undefined {
  const t = e?.text.trim();
  return t === '' ? undefined : t;
}

/** The name of the single empty element inside, e.g. `<DFFormat><chr /></DFFormat>` → `chr`. */
const marker = (e: XmlElement | undefined): string | undefined => e?.children[0]?.name;

/** MSFT:AllowedValues: `ValueType` ENUM (a list), Range/RegEx (one expression), Flag, None. */
function parseAllowed(props: XmlElement): DdfAllowedValues | undefined {
  const allowed = get(props, 'AllowedValues', MSFT_NS);
  if (!allowed) return undefined;
  const values = childrenNamed(allowed, MSFT_NS, 'Enum').map((e) => {
    const description = text(get(e, 'ValueDescription', MSFT_NS));
    return {
      value: text(get(e, 'Value', MSFT_NS)) ?? '',
      ...(description !== undefined ? { description } : {}),
    };
  });
  const expression = values.length ? undefined : text(get(allowed, 'Value', MSFT_NS));
  return {
    kind: attribute(allowed, 'ValueType') ?? 'None',
    values,
    ...(expression !== undefined ? { expression } : {}),
  };
}

function parseNode(e: XmlElement): { node: DdfNode; path?: string } {
  const props = get(e, 'DFProperties');
  const access = new Set<DdfAccess>();
  for (const a of get(props, 'AccessType')?.children ?? [])
    if ((DDF_ACCESS as readonly string[]).includes(a.name)) access.add(a.name as DdfAccess);
  const format = (marker(get(props, 'DFFormat')) ?? 'node') as DdfFormat;
  const name = text(get(e, 'NodeName'));
  const title = text(get(props, 'DFTitle'));
  const mime = text(get(get(props, 'DFType'), 'MIME'));
  const defaultValue = text(get(props, 'DefaultValue'));
  const description = text(get(props, 'Description'));
  const allowedValues = props && parseAllowed(props);
  const dynamicNaming = marker(get(props, 'DynamicNodeNaming', MSFT_NS));
  const scope = marker(get(props, 'Scope'));
  const path = text(get(e, 'Path'));
  const node: DdfNode = {
    name: name ?? null,
    ...(title !== undefined ? { title } : {}),
    access,
    format: (DDF_FORMATS as readonly string[]).includes(format) ? format : 'node',
    occurrence: (marker(get(props, 'Occurrence')) ?? 'One') as DdfOccurrence,
    scope: scope === 'Permanent' || scope === 'Dynamic' ? scope : undefined,
    ...(mime !== undefined ? { mime } : {}),
    caseSensitive: marker(get(props, 'CaseSense')) !== 'CIS',
    ...(defaultValue !== undefined ? { defaultValue } : {}),
    ...(description !== undefined ? { description } : {}),
    ...(allowedValues ? { allowedValues } : {}),
    ...(dynamicNaming !== undefined ? { dynamicNaming } : {}),
    children: childrenNamed(e, '', 'Node').map((c) => parseNode(c).node),
  };
  return path !== undefined ? { node, path } : { node };
}

/**
 * Parses a DDF document into its CSP roots (one per `<Node>` with a `<Path>`). DDF files are
 * Microsoft's, shipped with the program, not network input; their DOCTYPE is dropped unread.
 */
export function parseDdf(xml: string): DdfRoot[] {
  const withoutDoctype = xml.replace(/<!DOCTYPE[^[>]*(?:\[[\s\S]*?\])?\s*>/, '');
  const tree = readXml(withoutDoctype, malformed);
  if (tree.name !== 'MgmtTree') throw malformed('no MgmtTree');
  return childrenNamed(tree, '', 'Node').map((n) => {
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
  if (!path.includes('%')) return path.split('/'); // nothing escaped: the common case, cheaply
  try {
    return path.split('/').map(decodeURIComponent);
  } catch (e) {
    if (e instanceof URIError) return undefined;
    throw e;
  }
}

/** A node's children by lower-cased name (document order kept), and its dynamic child. */
interface ChildIndex {
  readonly named: ReadonlyMap<string, readonly DdfNode[]>;
  readonly dynamic: DdfNode | undefined;
}

/**
 * Child indexes, made on first use: the device resolves every URI of every command through
 * here, and a linear scan lower-casing each sibling's name was 3 % of the fleet's CPU.
 */
const INDEXES = new WeakMap<DdfNode, ChildIndex>();

function indexOf(node: DdfNode): ChildIndex {
  let index = INDEXES.get(node);
  if (!index) {
    const named = new Map<string, DdfNode[]>();
    for (const c of node.children)
      if (c.name !== null) {
        const key = c.name.toLowerCase();
        const same = named.get(key);
        if (same) same.push(c);
        else named.set(key, [c]);
      }
    index = { named, dynamic: node.children.find((c) => c.name === null) };
    INDEXES.set(node, index);
  }
  return index;
}

/**
 * Finds the DDF node for a management URI (`./Device/Vendor/MSFT/RootCATrustedCertificates/
 * Root/<hash>/EncodedCertificate`), or undefined when the DDFs describe no such node. A URI
 * without a scope prefix (`./Vendor/MSFT/…`) is the device scope (MS-MDM). Static names win
 * over a dynamic sibling; names compare case-insensitively where the DDF says CIS (the first
 * sibling in document order that matches).
 */
export function resolveUri(roots: readonly DdfRoot[], uri: string): ResolvedNode | undefined {
  const normalised = uri.startsWith('./Vendor/') ? `./Device${uri.slice(1)}` : uri;
  for (const root of roots) {
    if (
      !normalised.startsWith(root.path) ||
      normalised.charCodeAt(root.path.length) !== 0x2f /* / */
    )
      continue;
    const segments = uriSegments(normalised.slice(root.path.length + 1));
    if (segments?.[0] !== root.node.name) continue;
    let node = root.node;
    const dynamic: Record<string, string> = {};
    for (let i = 1; i < segments.length; i++) {
      const seg = segments[i]!;
      const index = indexOf(node);
      const named = index.named
        .get(seg.toLowerCase())
        ?.find((c) => !c.caseSensitive || c.name === seg);
      const next = named ?? index.dynamic;
      if (!next) return undefined;
      if (next.name === null) dynamic[next.title ?? 'name'] = seg;
      node = next;
    }
    return { node, dynamic };
  }
  return undefined;
}
