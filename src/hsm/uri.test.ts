/** PKCS#11 URIs: RFC 7512's own examples parse, round-trip, and a PIN is never printed. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isHsmError } from './errors.ts';
import { formatPkcs11Uri, parsePkcs11Uri } from './uri.ts';

describe('parsePkcs11Uri', () => {
  it('parses the examples of RFC 7512 §3', () => {
    assert.deepEqual(parsePkcs11Uri('pkcs11:'), {});
    assert.deepEqual(parsePkcs11Uri('pkcs11:object=my-pubkey;type=public'), {
      object: 'my-pubkey',
      type: 'public',
    });
    assert.deepEqual(
      parsePkcs11Uri(
        'pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BE%2D%D2%BB%7C%E6%3C%55%F5%C0%B3%58%9C%18%14?pin-value=1234',
      ),
      {
        token: 'The Software PKCS#11 Softtoken',
        manufacturer: 'Snake Oil, Inc.',
        model: '1.0',
        object: 'my-certificate',
        type: 'cert',
        id: Uint8Array.from(Buffer.from('69953e5cf4be2dd2bb7ce63c55f5c0b3589c1814', 'hex')),
        pinValue: '1234',
      },
    );
    assert.deepEqual(
      parsePkcs11Uri(
        'pkcs11:token=Software%20PKCS%2311%20softtoken;object=my-sign-key;type=private?module-name=mypkcs11',
      ),
      {
        token: 'Software PKCS#11 softtoken',
        object: 'my-sign-key',
        type: 'private',
        moduleName: 'mypkcs11',
      },
    );
    assert.deepEqual(
      parsePkcs11Uri(
        'pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1&pin-source=file:/etc/token_pin',
      ),
      {
        object: 'my-sign-key',
        type: 'private',
        modulePath: '/mnt/libmypkcs11.so.1',
        pinSource: 'file:/etc/token_pin',
      },
    );
    assert.deepEqual(
      parsePkcs11Uri(
        'pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert',
      ),
      {
        token: 'A name with a substring %;',
        object: 'my-certificate',
        type: 'cert',
      },
    );
    assert.deepEqual(
      parsePkcs11Uri(
        'pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;type=cert',
      ),
      {
        token: 'Name with a small A with acute: á',
        object: 'my-certificate',
        type: 'cert',
      },
    );
    assert.deepEqual(parsePkcs11Uri('pkcs11:slot-description=Sun%20Metaslot;slot-id=3'), {
      slotDescription: 'Sun Metaslot',
      slotId: 3,
    });
  });

  it('refuses what it cannot honour, without echoing a PIN', () => {
    for (const [uri, why] of [
      ['file:/x', /must start with "pkcs11:"/],
      ['pkcs11:token=a;token=b', /appears twice/],
      ['pkcs11:colour=blue', /unsupported path attribute "colour"/],
      ['pkcs11:x-vendor=1', /unsupported path attribute "x-vendor"/],
      ['pkcs11:type=key', /type must be one of/],
      ['pkcs11:slot-id=two', /slot-id must be a decimal number/],
      ['pkcs11:object=%zz', /bad percent-encoding/],
      ['pkcs11:object=a?pin-value=s3cret&pin-value=s3cret', /appears twice/],
    ] as const) {
      assert.throws(
        () => parsePkcs11Uri(uri),
        (e) =>
          isHsmError(e, 'ERR_HSM_INVALID_URI') && why.test(e.message) && !/s3cret/.test(e.message),
        uri,
      );
    }
  });
});

describe('formatPkcs11Uri', () => {
  it('round-trips, percent-encodes what it must, and never writes pin-value', () => {
    const uri = {
      token: 'certpost CA; test',
      object: 'issuing-ca',
      id: Uint8Array.from([1, 0xab]),
      type: 'private',
      modulePath: '/usr/lib/softhsm/libsofthsm2.so',
      pinSource: '/etc/certpost/pin',
      pinValue: 's3cret',
    } as const;
    const text = formatPkcs11Uri(uri);
    assert.equal(
      text,
      'pkcs11:token=certpost%20CA%3B%20test;object=issuing-ca;id=%01%AB;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/etc/certpost/pin',
    );
    assert.doesNotMatch(text, /s3cret/);
    const { pinValue: _, ...rest } = uri;
    assert.deepEqual(parsePkcs11Uri(text), rest);
  });
});
