/**
 * Microsoft's DDF files (../shared/conformance/ddf) parsed into the tree the device will serve.
 * The expectations are the CSP facts of omadm-reference.md §3, not re-statements of the parser.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseDdf, resolveUri, type DdfRoot } from './ddf.ts';

const DDF_DIR = new URL('./ddf/', import.meta.url).pathname;
const load = (name: string) => parseDdf(readFileSync(`${DDF_DIR}${name}.xml`, 'utf8'));
const roots: DdfRoot[] = [
  'RootCATrustedCertificates',
  'ClientCertificateInstall',
  'CertificateStore',
  'DMClient',
].flatMap(load);
const at = (uri: string) => {
  const r = resolveUri(roots, uri);
  assert.ok(r, `no DDF node for ${uri}`);
  return r;
};
const access = (uri: string) => [...at(uri).node.access].toSorted().join(',');

describe('DDF', () => {
  it('finds every CSP root in both scopes where Microsoft publishes both', () => {
    const list = roots.map((r) => `${r.path}/${r.node.name}`).toSorted();
    assert.deepEqual(list, [
      './Device/Vendor/MSFT/CertificateStore',
      './Device/Vendor/MSFT/ClientCertificateInstall',
      './Device/Vendor/MSFT/DMClient',
      './Device/Vendor/MSFT/RootCATrustedCertificates',
      './User/Vendor/MSFT/ClientCertificateInstall',
      './User/Vendor/MSFT/DMClient',
      './User/Vendor/MSFT/RootCATrustedCertificates',
    ]);
  });

  it('RootCATrustedCertificates: Root is device only; a certificate node is named by its hash', () => {
    assert.ok(resolveUri(roots, './Device/Vendor/MSFT/RootCATrustedCertificates/Root'));
    assert.equal(resolveUri(roots, './User/Vendor/MSFT/RootCATrustedCertificates/Root'), undefined);
    for (const store of ['CA', 'TrustedPublisher', 'TrustedPeople', 'UntrustedCertificates']) {
      assert.ok(resolveUri(roots, `./User/Vendor/MSFT/RootCATrustedCertificates/${store}`), store);
    }
    const enc = at('./Device/Vendor/MSFT/RootCATrustedCertificates/Root/0A1B2C/EncodedCertificate');
    assert.equal(enc.node.format, 'b64');
    assert.deepEqual(enc.dynamic, { CertHash: '0A1B2C' });
    assert.equal(
      access('./Device/Vendor/MSFT/RootCATrustedCertificates/Root/0A1B2C/EncodedCertificate'),
      'Add,Get,Replace',
    );
    assert.equal(
      access('./Device/Vendor/MSFT/RootCATrustedCertificates/Root/0A1B2C'),
      'Delete,Get',
    );
    for (const leaf of ['IssuedBy', 'IssuedTo', 'ValidFrom', 'ValidTo']) {
      const n = at(`./Device/Vendor/MSFT/RootCATrustedCertificates/CA/0A1B2C/${leaf}`).node;
      assert.equal(n.format, 'chr', leaf);
      assert.equal([...n.access].join(), 'Get', leaf);
    }
  });

  it('ClientCertificateInstall: the SCEP Install leaves and the PFX nodes with their formats', () => {
    const install = './Device/Vendor/MSFT/ClientCertificateInstall/SCEP/my-scep-1/Install';
    const formats: Record<string, string> = {
      ServerURL: 'chr',
      Challenge: 'chr',
      EKUMapping: 'chr',
      KeyUsage: 'int',
      SubjectName: 'chr',
      KeyProtection: 'int',
      RetryDelay: 'int',
      RetryCount: 'int',
      TemplateName: 'chr',
      KeyLength: 'int',
      HashAlgorithm: 'chr',
      CAThumbprint: 'chr',
      SubjectAlternativeNames: 'chr',
      ValidPeriod: 'chr',
      ContainerName: 'chr',
      Enroll: 'null',
    };
    for (const [leaf, format] of Object.entries(formats))
      assert.equal(at(`${install}/${leaf}`).node.format, format, leaf);
    assert.equal(access(`${install}/Enroll`), 'Exec');
    assert.deepEqual(at(`${install}/KeyUsage`).dynamic, { UniqueID: 'my-scep-1' });
    for (const leaf of ['Status', 'ErrorCode', 'CertThumbprint', 'RespondentServerUrl']) {
      assert.ok(
        at(`./User/Vendor/MSFT/ClientCertificateInstall/SCEP/x/${leaf}`).node.access.has('Get'),
        leaf,
      );
    }
    const pfx = './User/Vendor/MSFT/ClientCertificateInstall/PFXCertInstall/smime-1';
    const keyLocation = at(`${pfx}/KeyLocation`).node;
    assert.equal(keyLocation.format, 'int');
    assert.equal(keyLocation.allowedValues?.kind, 'ENUM');
    assert.deepEqual(
      keyLocation.allowedValues?.values.map((v) => v.value),
      ['1', '2', '3', '4'],
    );
    assert.equal(at(`${pfx}/PFXKeyExportable`).node.format, 'bool');
    assert.equal(at(`${pfx}/PFXCertPasswordEncryptionType`).node.format, 'int');
    assert.ok(at(pfx).node.access.has('Delete'));
  });

  it('CertificateStore is device scope; a URI without scope is the device', () => {
    assert.ok(resolveUri(roots, './Device/Vendor/MSFT/CertificateStore/ROOT/System'));
    assert.ok(resolveUri(roots, './Vendor/MSFT/CertificateStore/MY/User'));
    assert.equal(resolveUri(roots, './User/Vendor/MSFT/CertificateStore/MY/User'), undefined);
    assert.equal(resolveUri(roots, './Device/Vendor/MSFT/NoSuchCSP/x'), undefined);
    assert.equal(resolveUri(roots, './Device/Vendor/MSFT/CertificateStore/%E0%A4%A'), undefined);
    assert.equal(
      resolveUri(roots, './Device/Vendor/MSFT/RootCATrustedCertificates/NoSuchStore'),
      undefined,
    );
  });

  it('DMClient: the provider poll schedule and Unenroll', () => {
    const poll = at(
      './Device/Vendor/MSFT/DMClient/Provider/certpost/Poll/IntervalForFirstSetOfRetries',
    );
    assert.equal(poll.node.format, 'int');
    assert.deepEqual(poll.dynamic, { ProviderID: 'certpost' });
    assert.ok(resolveUri(roots, './Device/Vendor/MSFT/DMClient/Provider/certpost/Unenroll'));
  });
});

it('ships byte-for-byte the DDF files of ../shared/conformance/ddf', () => {
  const shared = new URL('../../../shared/conformance/ddf/', import.meta.url).pathname;
  const xml = readdirSync(shared)
    .filter((f) => f.endsWith('.xml'))
    .toSorted();
  assert.deepEqual(
    readdirSync(DDF_DIR)
      .filter((f) => f.endsWith('.xml'))
      .toSorted(),
    xml,
  );
  for (const f of xml)
    assert.ok(readFileSync(`${DDF_DIR}${f}`).equals(readFileSync(`${shared}${f}`)), f);
});
