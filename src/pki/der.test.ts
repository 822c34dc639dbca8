import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as der from './der.ts';
import { isPkiError } from './errors.ts';

describe('der', () => {
  it('round-trips OIDs, including large arcs', () => {
    for (const o of [
      '1.2.840.113549.1.1.11',
      '2.5.29.37.0',
      '1.3.6.1.4.1.311.20.2.3',
      '2.999.18446744073709551616',
    ]) {
      assert.equal(der.oid(der.decode(der.enc.oid(o))), o);
    }
  });

  it('round-trips integers in two’s complement', () => {
    for (const x of [0n, 1n, 127n, 128n, 255n, 256n, -1n, -128n, -129n, 2n ** 64n]) {
      assert.equal(der.integer(der.decode(der.enc.int(x))), x);
    }
  });

  it('reads BER indefinite lengths and constructed OCTET STRINGs', () => {
    // SEQUENCE (indefinite) { OCTET STRING (constructed, indefinite) { "ab", "c" } }
    const ber = Uint8Array.from([
      0x30, 0x80, 0x24, 0x80, 0x04, 0x02, 0x61, 0x62, 0x04, 0x01, 0x63, 0, 0, 0, 0,
    ]);
    const top = der.decode(ber);
    const [os] = der.children(top);
    assert.equal(Buffer.from(der.octets(os!)).toString(), 'abc');
    assert.equal(top.end, ber.length);
  });

  it('reports truncation, trailing bytes and excessive nesting with stable codes', () => {
    const full = der.enc.seq(der.enc.octets(Uint8Array.of(1, 2, 3)));
    assert.ok(
      isPkiError(
        catchErr(() => der.decode(full.subarray(0, full.length - 1))),
        'ERR_PKI_TRUNCATED',
      ),
    );
    assert.ok(
      isPkiError(
        catchErr(() => der.decode(Uint8Array.of(...full, 0))),
        'ERR_PKI_MALFORMED',
      ),
    );
    assert.ok(
      isPkiError(
        catchErr(() => der.decode(new Uint8Array(0))),
        'ERR_PKI_EMPTY',
      ),
    );
    let deep: Uint8Array = der.enc.null();
    for (let i = 0; i < der.MAX_DEPTH + 2; i++) deep = der.enc.seq(deep);
    const top = der.decode(deep);
    let n = top;
    const walk = () => {
      for (;;) n = der.children(n)[0]!;
    };
    assert.ok(isPkiError(catchErr(walk), 'ERR_PKI_LIMIT'));
  });

  it('readers refuse an absent field as malformed, never a TypeError (fuzzing regression)', () => {
    // A SEQUENCE with fewer children than its type declares: callers index child lists.
    const [missing] = der.children(der.decode(der.enc.seq()));
    for (const read of [
      der.children,
      der.value,
      der.raw,
      der.octets,
      der.oid,
      der.integer,
      (n: der.Asn1 | undefined) => der.smallInt(n),
      der.boolean,
      der.bitString,
      der.string,
      der.time,
    ]) {
      assert.ok(
        isPkiError(
          catchErr(() => read(missing)),
          'ERR_PKI_MALFORMED',
        ),
        read.name,
      );
    }
  });

  it('refuses a UniversalString character beyond U+10FFFF as malformed (fuzzing regression)', () => {
    const ucs4 = der.decode(
      der.tlv(der.Tag.UNIVERSAL_STRING, Uint8Array.of(0x7f, 0xff, 0xff, 0xff)),
    );
    assert.ok(
      isPkiError(
        catchErr(() => der.string(ucs4)),
        'ERR_PKI_MALFORMED',
      ),
    );
  });

  it('bounds the cost of huge INTEGERs and OID arcs (fuzzing regressions)', () => {
    // A 128-bit UUID arc (X.667) is the longest real OIDs use: 19 octets.
    const uuid = `2.25.${(2n ** 128n - 1n).toString()}`;
    assert.equal(der.oid(der.decode(der.enc.oid(uuid))), uuid);
    const longArc = der.tlv(
      der.Tag.OID,
      Uint8Array.of(0x2a, ...Array.from({ length: 20 }, () => 0x81), 0x01),
    );
    assert.ok(
      isPkiError(
        catchErr(() => der.oid(der.decode(longArc))),
        'ERR_PKI_LIMIT',
      ),
    );
    // Linear conversion: 256 KiB of INTEGER (it took seconds octet by octet).
    const big = der.decode(der.tlv(der.Tag.INTEGER, new Uint8Array(256 * 1024).fill(0x7f)));
    const t0 = performance.now();
    assert.equal(der.integer(big) > 0n, true);
    assert.ok(
      isPkiError(
        catchErr(() => der.smallInt(big)),
        'ERR_PKI_LIMIT',
      ),
    );
    assert.ok(performance.now() - t0 < 500);
    assert.equal(der.smallInt(der.decode(der.enc.int(2n ** 53n - 1n))), 2 ** 53 - 1);
  });

  it('sorts SET OF encodings (X.690 §11.6) and encodes times per RFC 5280', () => {
    const s = der.enc.setOf(der.enc.int(300), der.enc.int(1));
    assert.deepEqual(
      [...der.children(der.decode(s))].map((c) => der.integer(c)),
      [1n, 300n],
    );
    assert.equal(der.decode(der.enc.time(new Date('2049-12-31T23:59:59Z'))).tag, der.Tag.UTC_TIME);
    assert.equal(
      der.decode(der.enc.time(new Date('2050-01-01T00:00:00Z'))).tag,
      der.Tag.GENERALIZED_TIME,
    );
    assert.equal(
      der.time(der.decode(der.enc.time(new Date('2050-01-01T00:00:00Z')))).toISOString(),
      '2050-01-01T00:00:00.000Z',
    );
  });
});

function catchErr(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}
