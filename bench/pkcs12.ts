/**
 * PKCS#12 import cost (design.md §5: "within 1.2× of the PBKDF2 cost of the same file").
 *
 * The file is OpenSSL 3's default (PBES2 AES-256-CBC with PBKDF2-HMAC-SHA256 for the key and
 * the certificates, HMAC-SHA256 MAC) with 100,000 iterations, made by `openssl pkcs12 -export`
 * in a temporary directory, so the key derivations dominate. The reference is the bare KDF work
 * of that same file, done the fastest way we know: its two PBKDF2 derivations with Node's
 * `crypto.pbkdf2` (thread pool, concurrently) while the MAC key is derived with the RFC 7292
 * Appendix B KDF on the main thread. The import figure therefore measures everything
 * `parsePkcs12` adds: parsing, decryption, certificate and key parsing, scheduling.
 *
 * A second figure puts the Appendix B KDF itself (no native API exists) next to native
 * PBKDF2-HMAC of the same hash and iteration count, which costs two compressions per iteration
 * against the Appendix B KDF's one: a ratio near 0.5 would be native speed.
 */
import { pbkdf2 } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as der from '../src/pki/der.ts';
import { Tag } from '../src/pki/der.ts';
import { HASH_SIZES, KDF_ID, parsePbe, pkcs12Kdf, type PbeParams } from '../src/pki/pkcs12-kdf.ts';
import { parsePkcs12 } from '../src/pki/pkcs12.ts';
import { run, tempDir } from '../src/testing/tools.ts';
import type { BenchFigure } from './figure.ts';

const ITERATIONS = 100_000;
const PASSWORD = 'bench-password';
const RUNS = 15;
const pbkdf2Async = promisify(pbkdf2);

function makeFile(): Uint8Array {
  const dir = tempDir('certpost-bench-');
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  const pfx = join(dir, 'bench.p12');
  run(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'].concat([
      '-keyout',
      key,
      '-out',
      cert,
      '-subj',
      '/CN=bench',
      '-days',
      '1',
    ]),
  );
  run(
    'openssl',
    ['pkcs12', '-export', '-in', cert, '-inkey', key, '-out', pfx].concat([
      '-passout',
      `pass:${PASSWORD}`,
      '-iter',
      String(ITERATIONS),
      '-maciter',
    ]),
  );
  return new Uint8Array(readFileSync(pfx));
}

/** The file's KDF inputs, read with the same small walk as the parser (no decryption). */
function kdfInputs(bytes: Uint8Array): {
  pbes2: PbeParams[];
  macSalt: Uint8Array;
  macIterations: number;
} {
  const [, authSafeCi, macData] = der.seq(der.decode(bytes), 'PFX');
  const authSafe = der.octets(der.children(der.children(authSafeCi!)[1]!)[0]!);
  const pbes2: PbeParams[] = [];
  for (const ci of der.seq(der.decode(authSafe), 'AuthenticatedSafe')) {
    const [type, content] = der.seq(ci, 'ContentInfo');
    const inner = der.children(content!)[0]!;
    if (der.oid(type!) === '1.2.840.113549.1.7.6') {
      pbes2.push(parsePbe(der.seq(der.seq(inner, 'EncryptedData')[1], 'EncryptedContentInfo')[1]!));
    } else {
      for (const bag of der.seq(der.decode(der.octets(inner)), 'SafeContents')) {
        const [, value] = der.seq(bag, 'SafeBag');
        pbes2.push(parsePbe(der.seq(der.children(value!)[0], 'EncryptedPrivateKeyInfo')[0]!));
      }
    }
  }
  const [, salt, iter] = der.seq(macData, 'MacData');
  return {
    pbes2,
    macSalt: der.value(der.expect(salt, Tag.OCTET_STRING, 'macSalt')),
    macIterations: Number(der.integer(iter!)),
  };
}

function median(t: readonly number[]): number {
  return t.toSorted((x, y) => x - y)[t.length >> 1]!;
}

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await f();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Medians of `a` and `b` over RUNS interleaved runs (order alternating), after a warm-up of each. */
async function medians(
  a: () => Promise<unknown>,
  b: () => Promise<unknown>,
): Promise<[number, number]> {
  await a();
  await b();
  const ta: number[] = [];
  const tb: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    if (i % 2) {
      ta.push(await timed(a));
      tb.push(await timed(b));
    } else {
      tb.push(await timed(b));
      ta.push(await timed(a));
    }
  }
  return [median(ta), median(tb)];
}

export async function benchPkcs12(): Promise<BenchFigure[]> {
  const bytes = makeFile();
  const { pbes2, macSalt, macIterations } = kdfInputs(bytes);
  const utf8 = new TextEncoder().encode(PASSWORD);
  const bmp = der.concat([der.bmpBytes(PASSWORD), new Uint8Array(2)]);
  const macKey = () =>
    pkcs12Kdf('sha256', bmp, macSalt, KDF_ID.mac, macIterations, HASH_SIZES.sha256.u);
  const bareKdf = async () => {
    const derivations = pbes2.map((p) =>
      p.scheme === 'pbes2'
        ? pbkdf2Async(utf8, p.salt, p.iterations, p.cipher.keyLen, p.prf)
        : undefined,
    );
    macKey();
    await Promise.all(derivations);
  };
  const [importMs, kdfMs] = await medians(() => parsePkcs12(bytes, PASSWORD), bareKdf);
  const [appendixB, nativePbkdf2] = await medians(
    async () => macKey(),
    () => pbkdf2Async(utf8, macSalt, macIterations, 32, 'sha256'),
  );
  return [
    {
      name: `pkcs12: import an OpenSSL 3 default PFX (PBES2 AES-256, HMAC-SHA256 MAC, ${ITERATIONS.toLocaleString('en-US')} iterations)`,
      value: importMs,
      unit: 'ms',
      reference: {
        name: `bare KDF work of the same file (${pbes2.length}× crypto.pbkdf2 + MAC key)`,
        value: kdfMs,
      },
      better: 'lower',
      goal: 'within 1.2× of the KDF cost (ratio ≥ 0.83)',
    },
    {
      name: `pkcs12: RFC 7292 Appendix B KDF, SHA-256, ${macIterations.toLocaleString('en-US')} iterations`,
      value: appendixB,
      unit: 'ms',
      reference: {
        name: 'native crypto.pbkdf2 HMAC-SHA256, same iterations (2 compressions each)',
        value: nativePbkdf2,
      },
      better: 'lower',
    },
  ];
}
