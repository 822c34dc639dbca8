/**
 * The device's OMA-DM management tree, driven by Microsoft's DDF files: which URIs exist,
 * which commands each accepts, what its values look like. CSPs (certificate stores, SCEP,
 * PFX) attach behaviour through {@link CspHooks}; this module owns the generic rules of
 * OMA DM 1.2 / MS-MDM that every node shares:
 *
 * - a URI the DDFs do not describe → 404; a command the node's AccessType lacks → 405;
 * - Add of an existing node → 418; Replace/Delete/Get of a missing one → 404;
 * - "implicit Add" (MS-MDM): adding a leaf creates its missing dynamic parents;
 * - values must fit the DDF format (int, bool, b64, …) and allowed values → else 400; a
 *   Meta Format that names a different type → 415 (chr is accepted where the DDF says b64/bin,
 *   as Microsoft's own examples send PFXCertBlob);
 * - Get of an interior node lists its children `/`-separated; `?list=Struct` and
 *   `?list=StructData` return the subtree (names, or names and values);
 * - {@link ManagementTree.snapshot} / {@link ManagementTree.restore} give Atomic its rollback.
 */
import {
  resolveUri,
  type DdfAccess,
  type DdfFormat,
  type DdfNode,
  type DdfRoot,
} from '../omadm/ddf.ts';

/** OMA-DM status codes this tree answers with (omadm-reference.md §1.7). */
export const STATUS = {
  ok: 200,
  accepted: 202,
  badRequest: 400,
  notFound: 404,
  notAllowed: 405,
  optionalFeatureNotSupported: 406,
  unsupportedMediaType: 415,
  alreadyExists: 418,
  commandFailed: 500,
} as const;
export type StatusCode = (typeof STATUS)[keyof typeof STATUS] | number;

export interface LeafValue {
  readonly format: DdfFormat;
  readonly data: string;
}

/** What a Get returns: one item per node (a leaf's value, or an interior node's child list). */
export interface TreeItem {
  readonly uri: string;
  readonly format: DdfFormat;
  readonly data?: string;
}

type MaybeAsync<T> = T | Promise<T>;

/**
 * CSP behaviour attached to the tree. Each write hook may refuse by returning a status code
 * (anything but 200 or undefined); the tree then changes nothing.
 */
export interface CspHooks {
  /**
   * URIs whose existence and values the CSP keeps itself (a certificate store is the truth for
   * `RootCATrustedCertificates/Root/{CertHash}`): the tree stores nothing for them, asks
   * {@link list} and {@link read}, and leaves Add/Replace/Delete to the write hooks.
   */
  owns?(uri: string): boolean;
  /** Names of the dynamic children of an owned interior node; undefined = not owned. */
  list?(uri: string): readonly string[] | undefined;
  /** Before a leaf is added or replaced (validation beyond the DDF, side effects done). */
  beforeWrite?(
    uri: string,
    value: LeafValue,
    command: 'Add' | 'Replace',
  ): MaybeAsync<StatusCode | undefined>;
  /** Before a node and its subtree are deleted. */
  beforeDelete?(uri: string): MaybeAsync<StatusCode | undefined>;
  /** Exec on a node (e.g. `…/Install/Enroll`); the default for a node without one is 406. */
  exec?(uri: string, data: string | undefined): MaybeAsync<StatusCode | undefined>;
  /** A computed value for a leaf (e.g. IssuedBy read from the certificate); undefined = stored. */
  read?(uri: string): string | undefined;
  /**
   * Work a CSP defers to the end of a group of writes (an Atomic, or a single command): a PFX
   * is installed once the Atomic has set all its parameters, whatever their order. A failure
   * names the node whose command fails, and the group is rolled back.
   */
  settle?(): MaybeAsync<SettleFailure | undefined>;
  /** The CSPs' own state for Atomic rollback (taken with the tree's). */
  snapshot?(): unknown;
  restore?(state: unknown): void;
}

/** A deferred write that failed at the end of its group: the node and the status to report. */
export interface SettleFailure {
  readonly uri: string;
  readonly status: StatusCode;
}

/** What the tree itself keeps: values of plain (not CSP-owned) leaves and created dynamic nodes. */
export interface TreeData {
  readonly values: Readonly<Record<string, LeafValue>>;
  readonly created: readonly string[];
}

/** Atomic's rollback point: the tree's maps and the CSPs' state. */
export interface TreeSnapshot {
  readonly values: Map<string, LeafValue>;
  readonly created: Set<string>;
  readonly csp: unknown;
}

/** Normalises a management URI: no scope means the device scope (MS-MDM). */
export function normaliseUri(uri: string): string {
  return uri.startsWith('./Vendor/') ? `./Device${uri.slice(1)}` : uri.replace(/\/+$/, '');
}

function formatFits(format: DdfFormat, data: string): boolean {
  switch (format) {
    case 'int':
      return /^-?\d{1,19}$/.test(data);
    case 'bool':
      return data === 'true' || data === 'false';
    case 'b64':
    case 'bin':
      return /^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(data);
    case 'null':
      return data === '';
    case 'float':
      return data.trim() !== '' && Number.isFinite(Number(data));
    default:
      return true;
  }
}

/** Range expressions in MSFT:AllowedValues look like `[1-1000]`. */
function inRange(expression: string, data: string): boolean {
  const m = /^\[(-?\d+)-(-?\d+)\]$/.exec(expression.trim());
  if (!m) return true;
  const v = Number(data);
  return v >= Number(m[1]) && v <= Number(m[2]);
}

/** Where a Meta Format is acceptable for a DDF format. */
function metaFormatAccepted(ddf: DdfFormat, meta: string | undefined): boolean {
  if (meta === undefined || meta === ddf) return true;
  return (ddf === 'b64' || ddf === 'bin') && (meta === 'chr' || meta === 'b64' || meta === 'bin');
}

/** URIs whose DDF node a tree remembers (a device's session touches a few hundred). */
const RESOLVED_MAX = 4096;

export class ManagementTree {
  readonly #roots: readonly DdfRoot[];
  readonly #hooks: CspHooks;
  /** Leaf values by URI. */
  #values = new Map<string, LeafValue>();
  /** Dynamic interior nodes that exist, by URI (permanent ones always exist). */
  #created = new Set<string>();

  constructor(roots: readonly DdfRoot[], hooks: CspHooks = {}, data?: TreeData) {
    this.#roots = roots;
    this.#hooks = hooks;
    if (data) {
      this.#values = new Map(Object.entries(data.values));
      this.#created = new Set(data.created);
    }
  }

  /** The tree's own data, to persist (the CSPs persist theirs). */
  data(): TreeData {
    return { values: Object.fromEntries(this.#values), created: [...this.#created] };
  }

  /** State for Atomic rollback: copies of two flat maps, and the CSPs' state. */
  snapshot(): TreeSnapshot {
    return {
      values: new Map(this.#values),
      created: new Set(this.#created),
      csp: this.#hooks.snapshot?.(),
    };
  }

  restore(s: TreeSnapshot): void {
    this.#values = new Map(s.values);
    this.#created = new Set(s.created);
    this.#hooks.restore?.(s.csp);
  }

  /** Runs the CSPs' deferred work (see {@link CspHooks.settle}). */
  async settle(): Promise<SettleFailure | undefined> {
    return this.#hooks.settle?.();
  }

  /** A stored value of a plain leaf (CSPs read their parameters, e.g. SCEP Install/*). */
  value(uri: string): string | undefined {
    return this.#values.get(normaliseUri(uri))?.data;
  }

  /** Removes a plain leaf's value (a CSP clearing a consumed secret: SCEP Challenge). */
  forget(uri: string): void {
    this.#values.delete(normaliseUri(uri));
  }

  #owned(uri: string): boolean {
    return this.#hooks.owns?.(uri) ?? false;
  }

  /**
   * The DDF node of each URI resolved so far (null: none). A command's checks resolve its URI
   * and every prefix of it several times over (exists, implicit parents, access); resolving
   * was the device's largest single cost after XML. Cleared when it grows past
   * {@link RESOLVED_MAX}, so a long-lived agent's memory stays bounded.
   */
  readonly #resolved = new Map<string, DdfNode | null>();

  #node(uri: string): DdfNode | undefined {
    let node = this.#resolved.get(uri);
    if (node === undefined) {
      if (this.#resolved.size >= RESOLVED_MAX) this.#resolved.clear();
      this.#resolved.set(uri, (node = resolveUri(this.#roots, uri)?.node ?? null));
    }
    return node ?? undefined;
  }

  /** True when the node exists now: permanent ancestors chain, created dynamic nodes, set leaves. */
  exists(uri: string): boolean {
    const u = normaliseUri(uri);
    const node = this.#node(u);
    if (!node) return false;
    if (node.format !== 'node') return this.#values.has(u) || this.#hooks.read?.(u) !== undefined;
    const segments = u.split('/');
    for (let i = segments.length; i > 4; i--) {
      const prefix = segments.slice(0, i).join('/');
      const n = this.#node(prefix);
      if (!n || n.name !== null) continue;
      const parent = segments.slice(0, i - 1).join('/');
      const listed = this.#hooks.list?.(parent);
      if (listed ? !listed.includes(segments[i - 1]!) : !this.#created.has(prefix)) return false;
    }
    return true;
  }

  #allowed(uri: string, command: DdfAccess): { node: DdfNode } | StatusCode {
    const node = this.#node(uri);
    if (!node) return STATUS.notFound;
    if (!node.access.has(command)) return STATUS.notAllowed;
    return { node };
  }

  #children(uri: string): string[] {
    const node = this.#node(uri);
    if (!node) return [];
    const out: string[] = [];
    for (const c of node.children) {
      if (c.name !== null) {
        if (this.exists(`${uri}/${c.name}`)) out.push(c.name);
      } else {
        const listed = this.#hooks.list?.(uri);
        if (listed) {
          out.push(...listed);
          continue;
        }
        const prefix = `${uri}/`;
        for (const k of [...this.#created, ...this.#values.keys()]) {
          if (k.startsWith(prefix) && !k.slice(prefix.length).includes('/'))
            out.push(k.slice(prefix.length));
        }
      }
    }
    return [...new Set(out)];
  }

  /** Get (with optional `?list=Struct|StructData`): items, or a status code. */
  get(rawUri: string): { status: StatusCode; items: TreeItem[] } {
    const [path, query] = rawUri.split('?') as [string, string | undefined];
    const uri = normaliseUri(path);
    const allowed = this.#allowed(uri, 'Get');
    if (typeof allowed !== 'object') return { status: allowed, items: [] };
    if (!this.exists(uri)) return { status: STATUS.notFound, items: [] };
    const list = query?.match(/(?:^|&)list=(Struct|StructData)(?:&|$)/)?.[1];
    if (list) return { status: STATUS.ok, items: this.#walk(uri, list === 'StructData') };
    return { status: STATUS.ok, items: [this.#item(uri, allowed.node, true)] };
  }

  #item(uri: string, node: DdfNode, withData: boolean): TreeItem {
    if (node.format === 'node')
      return {
        uri,
        format: 'node',
        ...(withData ? { data: this.#children(uri).map(encodeURIComponent).join('/') } : {}),
      };
    const data = this.#hooks.read?.(uri) ?? this.#values.get(uri)?.data;
    return { uri, format: node.format, ...(withData && data !== undefined ? { data } : {}) };
  }

  #walk(uri: string, withData: boolean): TreeItem[] {
    const node = this.#node(uri)!;
    const items: TreeItem[] = [this.#item(uri, node, withData && node.format !== 'node')];
    if (node.format === 'node')
      for (const c of this.#children(uri)) items.push(...this.#walk(`${uri}/${c}`, withData));
    return items;
  }

  /**
   * Creates missing dynamic parents of `uri` (implicit Add). A parent's own AccessType does not
   * matter: RootCATrustedCertificates' `{CertHash}` node has only Get and Delete, and comes
   * into being only by adding its EncodedCertificate (MS-MDM "implicit Add").
   */
  #implicitParents(uri: string): StatusCode | undefined {
    const segments = uri.split('/');
    for (let i = 5; i < segments.length; i++) {
      const prefix = segments.slice(0, i).join('/');
      const n = this.#node(prefix);
      if (!n) return STATUS.notFound;
      if (n.name === null) this.#created.add(prefix);
    }
    return undefined;
  }

  #checkValue(node: DdfNode, data: string, metaFormat: string | undefined): StatusCode | undefined {
    if (!metaFormatAccepted(node.format, metaFormat)) return STATUS.unsupportedMediaType;
    if (!formatFits(node.format, data)) return STATUS.badRequest;
    const av = node.allowedValues;
    if (av?.kind === 'ENUM' && av.values.length && !av.values.some((v) => v.value === data))
      return STATUS.badRequest;
    if (av?.kind === 'Range' && av.expression && !inRange(av.expression, data))
      return STATUS.badRequest;
    return undefined;
  }

  /** Add of a node or a leaf value. */
  async add(rawUri: string, data: string | undefined, metaFormat?: string): Promise<StatusCode> {
    const uri = normaliseUri(rawUri);
    const allowed = this.#allowed(uri, 'Add');
    if (typeof allowed !== 'object') return allowed;
    if (this.exists(uri)) return STATUS.alreadyExists;
    const { node } = allowed;
    if (node.format !== 'node') {
      const bad = this.#checkValue(node, data ?? '', metaFormat);
      if (bad) return bad;
    }
    const value = { format: node.format, data: data ?? '' };
    if (this.#owned(uri)) return (await this.#hooks.beforeWrite?.(uri, value, 'Add')) ?? STATUS.ok;
    const before = { values: new Map(this.#values), created: new Set(this.#created) };
    const parents = this.#implicitParents(uri);
    if (parents) return parents;
    if (node.format === 'node') {
      this.#created.add(uri);
      return STATUS.ok;
    }
    const refused = await this.#hooks.beforeWrite?.(uri, value, 'Add');
    if (refused !== undefined && refused !== STATUS.ok) {
      // Only the implicit parents are undone: a refusing CSP keeps what it recorded (Status).
      this.#values = before.values;
      this.#created = before.created;
      return refused;
    }
    this.#values.set(uri, value);
    return STATUS.ok;
  }

  /** Replace of an existing leaf value. */
  async replace(
    rawUri: string,
    data: string | undefined,
    metaFormat?: string,
  ): Promise<StatusCode> {
    const uri = normaliseUri(rawUri);
    const allowed = this.#allowed(uri, 'Replace');
    if (typeof allowed !== 'object') return allowed;
    if (!this.exists(uri)) return STATUS.notFound;
    const { node } = allowed;
    if (node.format === 'node') return STATUS.notAllowed;
    const bad = this.#checkValue(node, data ?? '', metaFormat);
    if (bad) return bad;
    const value = { format: node.format, data: data ?? '' };
    const refused = await this.#hooks.beforeWrite?.(uri, value, 'Replace');
    if (refused !== undefined && refused !== STATUS.ok) return refused;
    if (!this.#owned(uri)) this.#values.set(uri, value);
    return STATUS.ok;
  }

  /** Delete of a node and everything under it. */
  async delete(rawUri: string): Promise<StatusCode> {
    const uri = normaliseUri(rawUri);
    const allowed = this.#allowed(uri, 'Delete');
    if (typeof allowed !== 'object') return allowed;
    if (!this.exists(uri)) return STATUS.notFound;
    const refused = await this.#hooks.beforeDelete?.(uri);
    if (refused !== undefined && refused !== STATUS.ok) return refused;
    const under = (k: string) => k === uri || k.startsWith(`${uri}/`);
    for (const k of this.#values.keys()) if (under(k)) this.#values.delete(k);
    for (const k of this.#created) if (under(k)) this.#created.delete(k);
    return STATUS.ok;
  }

  /** Exec of a node. */
  async exec(rawUri: string, data?: string): Promise<StatusCode> {
    const uri = normaliseUri(rawUri);
    const allowed = this.#allowed(uri, 'Exec');
    if (typeof allowed !== 'object') return allowed;
    const parent = uri.slice(0, uri.lastIndexOf('/'));
    if (!this.exists(parent)) return STATUS.notFound;
    return (await this.#hooks.exec?.(uri, data)) ?? STATUS.optionalFeatureNotSupported;
  }
}
