/**
 * Certificate chain building and validation: RFC 5280 §6 (basic path validation), simplified
 * but honest about what it checks.
 *
 * Contract of {@link buildChain}:
 * - Candidate issuers of a certificate are the trusted and intermediate certificates whose
 *   subject equals its issuer (RFC 5280 §7.1 comparison) and, when both carry key identifiers,
 *   whose subjectKeyIdentifier equals its authorityKeyIdentifier keyId (§4.2.1.1, §4.2.1.2).
 * - Every candidate is tried, depth first (trusted candidates first); the first path that
 *   validates wins, so cross-certificates and re-keyed intermediates with one name work. When
 *   no path validates, the result is the path that reached a trust anchor with the fewest
 *   problems, or else the longest path, with its problems.
 * - The trust anchor is any certificate of `trusted` that the path reaches (§6.1.1(d)): its
 *   signature is not checked, but its validity period, CA-ness (a v1 self-signed root is
 *   accepted as an anchor only), keyUsage, pathLenConstraint and critical extensions are, as
 *   OpenSSL checks them.
 * - For every link the signature is verified (§6.1.3(a)(1)) and the TBS signature algorithm
 *   must equal the outer one (§4.1.1.2); every certificate must be valid at `at` (§6.1.3(a)(2));
 *   every issuer must be a CA (§6.1.4(k)) with keyCertSign when keyUsage is present
 *   (§6.1.4(n)) and respect pathLenConstraint counting non-self-issued intermediates
 *   (§6.1.4(l)(m)); critical extensions must be recognized (§6.1.4(o), §6.1.5(f)).
 * - With `purpose` (an EKU OID) the leaf must list it or anyExtendedKeyUsage, or have no EKU
 *   (§4.2.1.12); an intermediate that has EKU must list it too (Windows and OpenSSL restrict
 *   purposes down the chain this way; RFC 5280 does not). The anchor's EKU is not consulted.
 * - Not implemented: revocation (CRL/OCSP), certificate policies (§6.1.3(d)-(f)) and name
 *   constraints (§6.1.3(b)(c)): nameConstraints, policy extensions are recognized so that a
 *   critical one does not fail the path, but they are NOT enforced.
 * - Weak signatures on checked links: MD5 always fails ('weak-signature-algorithm'); SHA-1 is
 *   accepted unless `rejectSha1` is set, because Windows still accepts SHA-1 below enterprise
 *   roots and those are the deployments certpost serves.
 * - Signatures (see {@link checkSignature}): RSA PKCS#1 v1.5, RSASSA-PSS (RFC 4055; MGF1 must
 *   use the message digest, the only form node:crypto verifies), ECDSA, Ed25519/Ed448, DSA.
 *   The TBS/outer algorithm comparison treats absent and NULL parameters as equal.
 *
 * `trusted` is true exactly when the path ends at an anchor and `problems` is empty; every
 * problem is a failure, there is no warning category.
 */
import { constants, verify, type KeyObject } from 'node:crypto';
import * as der from './der.ts';
import { Tag } from './der.ts';
import { publicKeyFromSpki } from './keys.ts';
import { ALG, EKU_NAMES, EXT, EXTENSION_NAMES, SIGNATURE_ALGS } from './oids.ts';
import {
  authorityKeyIdentifier,
  basicConstraints,
  extendedKeyUsage,
  formatName,
  isSelfIssued,
  keyUsage,
  namesEqual,
  sha1Thumbprint,
  subjectKeyIdentifier,
  type Certificate,
} from './x509.ts';

export type ChainProblemCode =
  | 'issuer-not-found'
  | 'untrusted-root'
  | 'bad-signature'
  | 'expired'
  | 'not-yet-valid'
  | 'not-a-ca'
  | 'path-length-exceeded'
  | 'key-usage'
  | 'extended-key-usage'
  | 'unknown-critical-extension'
  | 'signature-algorithm-mismatch'
  | 'weak-signature-algorithm'
  | 'loop';

/** One reason a path fails, attached to the certificate it concerns. */
export interface ChainProblem {
  readonly code: ChainProblemCode;
  /** Plain words: what is wrong with this certificate. */
  readonly message: string;
  /** SHA-1 thumbprint of the certificate concerned. */
  readonly certificate: string;
  readonly subject: string;
}

export interface ChainResult {
  readonly trusted: boolean;
  /** Leaf first, anchor last (or as far as the path got). */
  readonly chain: Certificate[];
  readonly problems: ChainProblem[];
}

export interface ChainOptions {
  readonly trusted: readonly Certificate[];
  readonly intermediates?: readonly Certificate[];
  /** Validation time; now by default. */
  readonly at?: Date;
  /** Required extended key usage (OID, e.g. `1.3.6.1.5.5.7.3.1` serverAuth). */
  readonly purpose?: string;
  /** Most certificates above the leaf (intermediates plus anchor); 8 by default. */
  readonly maxDepth?: number;
  /** Fail SHA-1 signatures on checked links (MD5 always fails). */
  readonly rejectSha1?: boolean;
}

/** Outcome of one signature check; `reason` says why it failed in plain words. */
export type SignatureCheck =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly code: 'bad-signature' | 'signature-algorithm-mismatch';
      readonly reason: string;
    };

// ---------------------------------------------------------------------------------------------
// Signatures

const HASH_OIDS: Readonly<Record<string, string>> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};
const MGF1 = '1.2.840.113549.1.1.8';
const ANY_EKU = '2.5.29.37.0';

/** The issuer's public key, or null when its SPKI cannot be read (reported, never thrown). */
function publicKey(spki: Uint8Array): KeyObject | null {
  try {
    return publicKeyFromSpki(spki);
  } catch {
    return null;
  }
}

/**
 * RSASSA-PSS-params (RFC 4055 §3.1): hash [0], maskGenAlgorithm [1], saltLength [2],
 * trailerField [3], with the defaults SHA-1, MGF1-SHA-1, 20 and 1. Returns a reason string
 * for parameters node:crypto cannot honour.
 */
function pssParams(params: Uint8Array | null): { hash: string; saltLength: number } | string {
  let hash = 'sha1';
  let mgfHash = 'sha1';
  let saltLength = 20;
  try {
    for (const field of params ? der.seq(der.decode(params), 'RSASSA-PSS-params') : []) {
      const inner = der.children(field)[0];
      if (field.tag === der.ctx(0, true)) hash = hashName(inner);
      else if (field.tag === der.ctx(1, true)) {
        const [mgf, mgfHashAlg] = der.seq(inner, 'maskGenAlgorithm');
        if (der.oid(mgf!) !== MGF1)
          return `unsupported RSASSA-PSS mask generation ${der.oid(mgf!)}`;
        mgfHash = hashName(mgfHashAlg);
      } else if (field.tag === der.ctx(2, true)) saltLength = der.smallInt(inner!, 1 << 16);
      else if (field.tag === der.ctx(3, true) && der.smallInt(inner!, 255) !== 1) {
        return 'unsupported RSASSA-PSS trailer field';
      }
    }
  } catch (e) {
    return `malformed RSASSA-PSS parameters (${(e as Error).message})`;
  }
  if (mgfHash !== hash) {
    return `RSASSA-PSS with MGF1-${mgfHash} and a ${hash} digest is not supported (they must match)`;
  }
  return { hash, saltLength };
}

function hashName(alg: der.Asn1 | undefined): string {
  const oid = der.oid(der.seq(alg, 'hashAlgorithm')[0]!);
  const name = HASH_OIDS[oid];
  if (!name) throw new Error(`unknown hash algorithm ${oid}`);
  return name;
}

/** The signature AlgorithmIdentifier inside TBSCertificate, compared with the outer one. */
function innerAlgorithmMatches(cert: Certificate): boolean {
  try {
    const tbs = der.seq(der.decode(cert.tbs), 'TBSCertificate');
    const alg = tbs[tbs[0]?.tag === der.ctx(0, true) ? 2 : 1];
    const [oidNode, params] = der.seq(alg, 'signature');
    if (der.oid(oidNode!) !== cert.signatureAlgorithm) return false;
    // Certificate folds an explicit NULL into null, so NULL and absent compare equal here.
    const inner = params && params.tag !== Tag.NULL ? der.raw(params) : null;
    const outer = cert.signatureParams;
    return inner === null || outer === null ? inner === outer : der.bytesEqual(inner, outer);
  } catch {
    return false;
  }
}

/** Whether a key of this type can produce signatures of this family. */
function keyFits(family: string, sigOid: string, key: KeyObject): boolean {
  const type = key.asymmetricKeyType;
  switch (family) {
    case 'rsa':
      return type === 'rsa';
    case 'pss':
      return type === 'rsa' || type === 'rsa-pss';
    case 'ec':
      return type === 'ec';
    case 'dsa':
      return type === 'dsa';
    case 'ed':
      return sigOid === ALG.ed25519 ? type === 'ed25519' : type === 'ed448';
    default:
      return false;
  }
}

/**
 * Checks the signature of `cert` with the issuer's SubjectPublicKeyInfo, saying why it fails.
 * Never throws: unknown algorithms, unusable keys and malformed parameters are failures.
 */
export function checkSignature(cert: Certificate, issuerSpki: Uint8Array): SignatureCheck {
  if (SIGNATURE_ALGS[cert.signatureAlgorithm] && !innerAlgorithmMatches(cert)) {
    return fail(
      'signature-algorithm-mismatch',
      'the signature algorithm inside the signed part differs from the outer one (RFC 5280 §4.1.1.2)',
    );
  }
  return checkSignedStructure(cert, issuerSpki);
}

/** What a signature covers and is: certificates, CRLs and PKCS#10 requests share this shape. */
export type SignedStructure = Pick<
  Certificate,
  'tbs' | 'signatureAlgorithm' | 'signatureParams' | 'signature'
>;

/**
 * Checks the signature of any signed structure (RFC 5280 §4.1.1.2 shape: tbs, algorithm,
 * signature) with a SubjectPublicKeyInfo, saying why it fails. Never throws.
 */
export function checkSignedStructure(signed: SignedStructure, spki: Uint8Array): SignatureCheck {
  const alg = SIGNATURE_ALGS[signed.signatureAlgorithm];
  if (!alg)
    return fail('bad-signature', `unsupported signature algorithm ${signed.signatureAlgorithm}`);
  const key = publicKey(spki);
  if (!key) return fail('bad-signature', "the issuer's public key cannot be used");
  if (!keyFits(alg.key, signed.signatureAlgorithm, key)) {
    return fail(
      'signature-algorithm-mismatch',
      `${alg.name} signature cannot come from the issuer's ${key.asymmetricKeyType ?? 'unknown'} key`,
    );
  }
  const ok = verifyWith(signed, alg.key, alg.hash, key);
  if (typeof ok === 'string') return fail('bad-signature', ok);
  return ok
    ? { ok: true }
    : fail('bad-signature', "the signature does not verify with the issuer's public key");
}

function fail(
  code: 'bad-signature' | 'signature-algorithm-mismatch',
  reason: string,
): SignatureCheck {
  return { ok: false, code, reason };
}

function verifyWith(
  cert: SignedStructure,
  family: string,
  hash: string | null,
  key: KeyObject,
): boolean | string {
  try {
    if (family === 'pss') {
      const p = pssParams(cert.signatureParams);
      if (typeof p === 'string') return p;
      const opts = { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: p.saltLength };
      return verify(p.hash, cert.tbs, opts, cert.signature);
    }
    // ECDSA and DSA signatures are DER Ecdsa-Sig-Value/Dss-Sig-Value (node's default encoding).
    return verify(hash, cert.tbs, key, cert.signature);
  } catch (e) {
    return `the signature cannot be verified (${(e as Error).message})`;
  }
}

/** True when the issuer's key (SubjectPublicKeyInfo DER) verifies the certificate's signature. */
export function verifySignature(cert: Certificate, issuerSpki: Uint8Array): boolean {
  return checkSignature(cert, issuerSpki).ok;
}

// ---------------------------------------------------------------------------------------------
// Path building

/** Extensions whose meaning we know (RFC 5280 §4.2.1); a critical one does not fail the path. */
const RECOGNIZED = new Set<string>([
  EXT.basicConstraints,
  EXT.keyUsage,
  EXT.extKeyUsage,
  EXT.subjectAltName,
  EXT.nameConstraints, // recognized but NOT enforced (see the header)
  EXT.certificatePolicies, // not enforced
  '2.5.29.36', // policyConstraints, not enforced
  '2.5.29.54', // inhibitAnyPolicy, not enforced
  EXT.subjectKeyIdentifier,
  EXT.authorityKeyIdentifier,
]);

/** Safety cap on the number of complete paths examined, against pathological certificate sets. */
const MAX_PATHS = 64;

interface Context {
  readonly at: Date;
  readonly purpose: string | undefined;
  readonly rejectSha1: boolean;
  readonly maxDepth: number;
  readonly trusted: Set<string>;
  readonly pool: readonly Pooled[];
  /** Signature outcomes per `child:issuer` thumbprint pair. */
  readonly signatures: Map<string, SignatureCheck>;
}

interface Pooled {
  readonly cert: Certificate;
  readonly sha1: string;
  readonly trusted: boolean;
}

/** A complete path: `end` says how it ended. */
interface Path {
  readonly certs: Pooled[];
  readonly end: 'anchor' | 'issuer-not-found' | 'untrusted-root' | 'loop' | 'too-deep';
}

interface Evaluated {
  readonly path: Path;
  readonly problems: ChainProblem[];
}

/**
 * Builds and validates a path from `leaf` to one of `trusted` (see the module comment for
 * exactly what is checked).
 *
 * @example
 * const r = buildChain(leaf, { trusted: [root], intermediates: [inter], purpose: '1.3.6.1.5.5.7.3.1' });
 * if (!r.trusted) for (const p of r.problems) console.log(p.subject, p.message);
 */
export function buildChain(leaf: Certificate, options: ChainOptions): ChainResult {
  const ctx = makeContext(options);
  const start: Pooled = { cert: leaf, sha1: sha1Thumbprint(leaf), trusted: false };
  const leafEntry = ctx.trusted.has(start.sha1) ? { ...start, trusted: true } : start;
  let best: Evaluated | undefined;
  let seen = 0;
  for (const path of paths(ctx, [leafEntry])) {
    const evaluated: Evaluated = { path, problems: evaluate(ctx, path) };
    if (evaluated.problems.length === 0 && path.end === 'anchor') return result(evaluated);
    if (!best || better(evaluated, best)) best = evaluated;
    if (++seen >= MAX_PATHS) break;
  }
  return result(best!);
}

function makeContext(options: ChainOptions): Context {
  const pool = new Map<string, Pooled>();
  for (const cert of options.trusted) {
    const sha1 = sha1Thumbprint(cert);
    pool.set(sha1, { cert, sha1, trusted: true });
  }
  for (const cert of options.intermediates ?? []) {
    const sha1 = sha1Thumbprint(cert);
    if (!pool.has(sha1)) pool.set(sha1, { cert, sha1, trusted: false });
  }
  return {
    at: options.at ?? new Date(),
    purpose: options.purpose,
    rejectSha1: options.rejectSha1 ?? false,
    maxDepth: options.maxDepth ?? 8,
    trusted: new Set([...pool.values()].filter((p) => p.trusted).map((p) => p.sha1)),
    // Trusted candidates first: the shortest way to an anchor is tried before detours.
    pool: [...pool.values()].toSorted((a, b) => Number(b.trusted) - Number(a.trusted)),
    signatures: new Map(),
  };
}

function result(e: Evaluated): ChainResult {
  return {
    trusted: e.path.end === 'anchor' && e.problems.length === 0,
    chain: e.path.certs.map((p) => p.cert),
    problems: e.problems,
  };
}

/** Ranking of failed paths: reaching an anchor first, then fewer problems, then length. */
function better(a: Evaluated, b: Evaluated): boolean {
  const anchoredA = a.path.end === 'anchor';
  const anchoredB = b.path.end === 'anchor';
  if (anchoredA !== anchoredB) return anchoredA;
  if (a.problems.length !== b.problems.length) return a.problems.length < b.problems.length;
  return a.path.certs.length > b.path.certs.length;
}

/** Candidate issuers of `cert` by name and, where both exist, key identifier. */
function issuersOf(ctx: Context, cert: Certificate): Pooled[] {
  const aki = read(() => authorityKeyIdentifier(cert));
  return ctx.pool.filter((p) => {
    if (!namesEqual(cert.issuer, p.cert.subject)) return false;
    const ski = read(() => subjectKeyIdentifier(p.cert));
    return !(aki && ski && aki !== ski);
  });
}

/** Every path from the last certificate of `prefix` upwards, depth first. */
function* paths(ctx: Context, prefix: Pooled[]): Generator<Path> {
  const last = prefix[prefix.length - 1]!;
  if (last.trusted) {
    yield { certs: prefix, end: 'anchor' };
    return;
  }
  if (prefix.length - 1 >= ctx.maxDepth) {
    yield { certs: prefix, end: 'too-deep' };
    return;
  }
  const candidates = issuersOf(ctx, last.cert);
  const fresh = candidates.filter((c) => !prefix.some((p) => p.sha1 === c.sha1));
  if (fresh.length === 0) {
    yield { certs: prefix, end: deadEnd(last, candidates) };
    return;
  }
  for (const c of fresh) yield* paths(ctx, [...prefix, c]);
}

/** Why a path stops below any anchor: a self-signed root, a missing issuer, or a cycle. */
function deadEnd(last: Pooled, candidates: readonly Pooled[]): Path['end'] {
  if (candidates.some((c) => c.sha1 === last.sha1)) return 'untrusted-root';
  if (candidates.length === 0) return selfIssued(last.cert) ? 'untrusted-root' : 'issuer-not-found';
  return 'loop';
}

// ---------------------------------------------------------------------------------------------
// Path evaluation

function problem(cert: Certificate, code: ChainProblemCode, message: string): ChainProblem {
  return { code, message, certificate: sha1Thumbprint(cert), subject: formatName(cert.subject) };
}

function evaluate(ctx: Context, path: Path): ChainProblem[] {
  const certs = path.certs.map((p) => p.cert);
  const out: ChainProblem[] = [];
  const anchorAt = path.end === 'anchor' ? certs.length - 1 : -1;
  certs.forEach((cert, i) => {
    const issuer = path.certs[i + 1];
    if (issuer) out.push(...linkProblems(ctx, path.certs[i]!, issuer));
    out.push(...validityProblems(ctx, cert));
    out.push(...criticalExtensionProblems(cert));
    if (i > 0) out.push(...issuerProblems(cert, certs, i, i === anchorAt));
    // The anchor's EKU is not consulted, unless the leaf itself is the anchor.
    if (ctx.purpose !== undefined && (i === 0 || i !== anchorAt)) {
      out.push(...ekuProblems(cert, ctx.purpose, i === 0));
    }
  });
  const ending = endProblem(path, certs[certs.length - 1]!, ctx);
  if (ending) out.push(ending);
  return out;
}

function endProblem(path: Path, last: Certificate, ctx: Context): ChainProblem | null {
  const issuer = formatName(last.issuer);
  switch (path.end) {
    case 'anchor':
      return null;
    case 'untrusted-root':
      return problem(
        last,
        'untrusted-root',
        'self-signed certificate that is not among the trusted certificates',
      );
    case 'issuer-not-found':
      return problem(
        last,
        'issuer-not-found',
        `its issuer "${issuer}" is not among the trusted or intermediate certificates`,
      );
    case 'loop':
      return problem(
        last,
        'loop',
        `every candidate issuer "${issuer}" is already in the path (a certificate loop)`,
      );
    case 'too-deep':
      return problem(
        last,
        'path-length-exceeded',
        `no trusted root within ${ctx.maxDepth} certificates above the leaf (maxDepth)`,
      );
  }
}

function linkProblems(ctx: Context, child: Pooled, issuer: Pooled): ChainProblem[] {
  const key = `${child.sha1}:${issuer.sha1}`;
  let check = ctx.signatures.get(key);
  if (!check) {
    check = checkSignature(child.cert, issuer.cert.spki);
    ctx.signatures.set(key, check);
  }
  const out: ChainProblem[] = [];
  if (!check.ok)
    out.push(
      problem(child.cert, check.code, `${check.reason} ("${formatName(issuer.cert.subject)}")`),
    );
  const weak = weakness(child.cert, ctx.rejectSha1);
  if (weak) out.push(problem(child.cert, 'weak-signature-algorithm', weak));
  return out;
}

/** MD5 always fails; SHA-1 only when asked to (see the module comment). */
function weakness(cert: Certificate, rejectSha1: boolean): string | null {
  const alg = SIGNATURE_ALGS[cert.signatureAlgorithm];
  let hash = alg?.hash ?? null;
  if (alg?.key === 'pss') {
    const p = pssParams(cert.signatureParams);
    hash = typeof p === 'string' ? null : p.hash;
  }
  if (hash === 'md5')
    return `signed with ${alg!.name}: MD5 signatures can be forged and are not accepted`;
  if (hash === 'sha1' && rejectSha1)
    return `signed with ${alg!.name}: SHA-1 signatures are rejected (rejectSha1)`;
  return null;
}

function validityProblems(ctx: Context, cert: Certificate): ChainProblem[] {
  if (ctx.at.getTime() > cert.notAfter.getTime()) {
    return [problem(cert, 'expired', `certificate expired on ${cert.notAfter.toISOString()}`)];
  }
  if (ctx.at.getTime() < cert.notBefore.getTime()) {
    return [
      problem(
        cert,
        'not-yet-valid',
        `certificate is not valid before ${cert.notBefore.toISOString()}`,
      ),
    ];
  }
  return [];
}

function criticalExtensionProblems(cert: Certificate): ChainProblem[] {
  return cert.extensions
    .filter((e) => e.critical && !RECOGNIZED.has(e.oid))
    .map((e) => {
      const name = EXTENSION_NAMES[e.oid];
      const label = name ? `${e.oid} (${name})` : e.oid;
      return problem(
        cert,
        'unknown-critical-extension',
        `critical extension ${label} is not recognized`,
      );
    });
}

/**
 * Reads an extension, mapping a malformed encoding to `undefined`: validation reports bad
 * input as problems and never throws.
 */
function read<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

/** Self-issued (RFC 5280 §3.3.1), judged by names alone when key identifiers are unreadable. */
function selfIssued(cert: Certificate): boolean {
  return read(() => isSelfIssued(cert)) ?? namesEqual(cert.subject, cert.issuer);
}

/** Checks on certs[i] in its role as issuer of certs[i-1] (RFC 5280 §6.1.4(k)-(n)). */
function issuerProblems(
  cert: Certificate,
  certs: readonly Certificate[],
  i: number,
  anchor: boolean,
): ChainProblem[] {
  const out: ChainProblem[] = [];
  const bc = read(() => basicConstraints(cert));
  if (bc === undefined) out.push(problem(cert, 'not-a-ca', 'malformed basicConstraints extension'));
  else if (bc === null) {
    const v1Root = anchor && cert.version === 1 && selfIssued(cert);
    if (!v1Root)
      out.push(
        problem(
          cert,
          'not-a-ca',
          'issues certificates but has no basicConstraints extension marking it as a CA',
        ),
      );
  } else if (!bc.ca)
    out.push(
      problem(cert, 'not-a-ca', 'issues certificates but its basicConstraints says cA=FALSE'),
    );
  if (bc && bc.pathLen !== null) {
    const below = certs.slice(1, i).filter((c) => !selfIssued(c)).length;
    if (below > bc.pathLen) {
      out.push(
        problem(
          cert,
          'path-length-exceeded',
          `pathLenConstraint ${bc.pathLen} allows ${bc.pathLen} intermediate CA certificate(s) below it, the path has ${below}`,
        ),
      );
    }
  }
  const ku = read(() => keyUsage(cert));
  if (ku === undefined) out.push(problem(cert, 'key-usage', 'malformed keyUsage extension'));
  else if (ku && !ku.includes('keyCertSign')) {
    out.push(
      problem(
        cert,
        'key-usage',
        `issues certificates but its keyUsage (${ku.join(', ') || 'empty'}) lacks keyCertSign`,
      ),
    );
  }
  return out;
}

function ekuProblems(cert: Certificate, purpose: string, isLeaf: boolean): ChainProblem[] {
  const eku = read(() => extendedKeyUsage(cert));
  if (eku === undefined)
    return [problem(cert, 'extended-key-usage', 'malformed extendedKeyUsage extension')];
  if (eku === null || eku.some((e) => e.oid === purpose || e.oid === ANY_EKU)) return [];
  const listed = eku.map((e) => e.name).join(', ');
  const wanted = EKU_NAMES[purpose] ?? purpose;
  const role = isLeaf ? 'certificate' : 'CA certificate restricts its chain to';
  return [
    problem(
      cert,
      'extended-key-usage',
      `${role} extendedKeyUsage ${listed}, which does not include ${wanted}`,
    ),
  ];
}

/** One line for people: the path and whether it is trusted, or the first problem and a count. */
export function describeTrust(r: ChainResult): string {
  const path = r.chain.map((c) => formatName(c.subject) || '(empty subject)').join(' → ');
  if (r.trusted) return `trusted: ${path}`;
  const [first, ...rest] = r.problems;
  const more = rest.length ? ` (and ${rest.length} more problem${rest.length > 1 ? 's' : ''})` : '';
  return first ? `not trusted: ${first.subject}: ${first.message}${more}` : `not trusted: ${path}`;
}
