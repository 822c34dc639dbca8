/**
 * Certificate inspection throughput (design.md §5: ≥ 10,000 certificates/s) on Debian's
 * Mozilla roots, against Node's `crypto.X509Certificate` reading the same fields, and against
 * pkijs (asn1js), the schema library we would otherwise use: the figure that justifies
 * `src/pki/der.ts`.
 */
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as pkijs from 'pkijs';
import { decodePem } from '../src/pki/pem.ts';
import { inspectCertificate, parseCertificate } from '../src/pki/x509.ts';
import type { BenchFigure } from './figure.ts';

const MOZILLA = '/usr/share/ca-certificates/mozilla';

function loadRoots(): Uint8Array[] {
  return readdirSync(MOZILLA)
    .filter((f) => f.endsWith('.crt'))
    .map((f) => decodePem(readFileSync(join(MOZILLA, f)))[0]!.der);
}

/** Certificates per second for `f` over `certs`, median of `runs` timed passes after warm-up. */
function rate(
  certs: readonly Uint8Array[],
  passes: number,
  f: (der: Uint8Array) => unknown,
): number {
  for (let i = 0; i < 3; i++) for (const c of certs) f(c);
  const rates: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    for (let p = 0; p < passes; p++) for (const c of certs) f(c);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    rates.push((passes * certs.length) / s);
  }
  return rates.toSorted((a, b) => a - b)[2]!;
}

/** The same information our inspection model gives, read through Node's X509Certificate. */
function nodeInspect(der: Uint8Array): unknown {
  const c = new X509Certificate(der);
  return [
    c.subject,
    c.issuer,
    c.serialNumber,
    c.validFrom,
    c.validTo,
    c.fingerprint,
    c.fingerprint256,
    c.keyUsage,
    c.subjectAltName,
    c.infoAccess,
    c.ca,
    c.publicKey.asymmetricKeyDetails,
  ];
}

function pkijsInspect(der: Uint8Array): unknown {
  const c = pkijs.Certificate.fromBER(der);
  return [
    c.subject.typesAndValues.length,
    c.issuer.typesAndValues.length,
    c.serialNumber.valueBlock.valueHexView,
    c.notBefore.value,
    c.notAfter.value,
    c.extensions?.map((e) => e.parsedValue),
  ];
}

export async function benchInspect(): Promise<BenchFigure[]> {
  const certs = loadRoots();
  const ours = rate(certs, 40, (d) => inspectCertificate(parseCertificate(d)));
  const node = rate(certs, 40, nodeInspect);
  const viaPkijs = rate(certs, 4, pkijsInspect);
  return [
    {
      name: `inspect: full inspection model, ${certs.length} Debian roots`,
      value: ours,
      unit: 'certs/s',
      reference: { name: 'node crypto.X509Certificate, same fields', value: node },
      better: 'higher',
      goal: '≥ 10,000 certs/s',
    },
    {
      name: 'inspect: pkijs Certificate.fromBER + extensions (why der.ts exists)',
      value: viaPkijs,
      unit: 'certs/s',
      reference: { name: 'certpost inspection', value: ours },
      better: 'higher',
    },
  ];
}
