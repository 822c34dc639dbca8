/**
 * The management tree against Microsoft's DDFs: one test generated from every node of the
 * four DDF files (commands outside AccessType are 405, inside are not), then the generic
 * OMA-DM rules of tree.ts one by one.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DDF_ACCESS, type DdfNode } from '../omadm/ddf.ts';
import { deviceDdfRoots } from './agent.ts';
import { ManagementTree, STATUS } from './tree.ts';

/** The device's DDFs: all four vendored files. */
const roots = deviceDdfRoots();

function* walk(
  uri: string,
  node: DdfNode,
  depth: number,
): Generator<{ uri: string; node: DdfNode }> {
  yield { uri, node };
  for (const c of node.children) yield* walk(`${uri}/${c.name ?? `dyn${depth}`}`, c, depth + 1);
}

/** Every node of the DDFs with a concrete URI (dynamic names filled in). */
function* allNodes(): Generator<{ uri: string; node: DdfNode }> {
  for (const r of roots) yield* walk(`${r.path}/${r.node.name}`, r.node, 0);
}

/** A value the node's DDF format and allowed values accept. */
function validValue(node: DdfNode): string {
  const av = node.allowedValues;
  if (av?.kind === 'ENUM' && av.values[0]) return av.values[0].value;
  if (av?.kind === 'Range' && av.expression) return /\[(-?\d+)/.exec(av.expression)?.[1] ?? '1';
  return (
    { int: '1', bool: 'true', b64: 'AAAA', bin: 'AAAA', null: '', node: '' }[
      node.format as string
    ] ?? 'x'
  );
}

const CSP = './Device/Vendor/MSFT/RootCATrustedCertificates';

describe('management tree', () => {
  it('accepts exactly the commands each DDF node lists, for every node of the four DDFs', async () => {
    let checked = 0;
    for (const { uri, node } of allNodes()) {
      for (const command of DDF_ACCESS.filter((c) => c !== 'Copy')) {
        const tree = new ManagementTree(roots, { exec: () => STATUS.ok });
        const value = validValue(node);
        const status =
          command === 'Get'
            ? tree.get(uri).status
            : command === 'Add'
              ? await tree.add(uri, value)
              : command === 'Replace'
                ? await tree.replace(uri, value)
                : command === 'Delete'
                  ? await tree.delete(uri)
                  : await tree.exec(uri);
        if (node.access.has(command))
          assert.notEqual(status, STATUS.notAllowed, `${command} ${uri} is allowed by the DDF`);
        else
          assert.equal(
            status,
            STATUS.notAllowed,
            `${command} ${uri} is not in the DDF's AccessType`,
          );
        checked++;
      }
    }
    assert.ok(checked > 1500, `checked ${checked} node/command pairs`);
  });

  it('answers 404 for URIs the DDFs do not describe, and for the user-scope Root', async () => {
    const tree = new ManagementTree(roots);
    assert.equal(tree.get('./Device/Vendor/MSFT/NoSuchCSP').status, STATUS.notFound);
    // A malformed escape names no node (a URIError escaped here once; found by fuzzing).
    assert.equal(await tree.add('./De%/VRL', 'x'), STATUS.notFound);
    assert.equal(await tree.add(`${CSP}/Root/%zz/EncodedCertificate`, 'AAAA'), STATUS.notFound);
    assert.equal(
      await tree.add(
        './User/Vendor/MSFT/RootCATrustedCertificates/Root/AB/EncodedCertificate',
        'AAAA',
      ),
      STATUS.notFound,
    );
  });

  it('implicit Add creates the dynamic parent; Add twice is 418; Delete removes the subtree', async () => {
    const tree = new ManagementTree(roots);
    assert.equal(tree.get(`${CSP}/Root`).items[0]?.data, '');
    assert.equal(await tree.add(`${CSP}/Root/ABCD/EncodedCertificate`, 'MIIB'), STATUS.ok);
    assert.equal(tree.get(`${CSP}/Root`).items[0]?.data, 'ABCD');
    assert.equal(
      await tree.add(`${CSP}/Root/ABCD/EncodedCertificate`, 'MIIB'),
      STATUS.alreadyExists,
    );
    assert.equal(await tree.replace(`${CSP}/Root/ABCD/EncodedCertificate`, 'MIIC'), STATUS.ok);
    assert.equal(tree.get(`${CSP}/Root/ABCD/EncodedCertificate`).items[0]?.data, 'MIIC');
    assert.equal(await tree.delete(`${CSP}/Root/ABCD`), STATUS.ok);
    assert.equal(tree.get(`${CSP}/Root/ABCD/EncodedCertificate`).status, STATUS.notFound);
    assert.equal(
      await tree.replace(`${CSP}/Root/ABCD/EncodedCertificate`, 'MIIC'),
      STATUS.notFound,
    );
    assert.equal(await tree.delete(`${CSP}/Root/ABCD`), STATUS.notFound);
  });

  it('checks values against the DDF format and allowed values (400), and Meta Format (415)', async () => {
    const tree = new ManagementTree(roots);
    const scep = './Device/Vendor/MSFT/ClientCertificateInstall/SCEP/wifi/Install';
    assert.equal(await tree.add(`${scep}/KeyUsage`, 'lots'), STATUS.badRequest);
    assert.equal(await tree.add(`${scep}/KeyUsage`, '160', 'int'), STATUS.ok);
    assert.equal(await tree.add(`${scep}/KeyLength`, '2048', 'chr'), STATUS.unsupportedMediaType);
    const pfx = './User/Vendor/MSFT/ClientCertificateInstall/PFXCertInstall/smime';
    assert.equal(
      await tree.add(`${pfx}/KeyLocation`, '5'),
      STATUS.badRequest,
      'KeyLocation is 1-4',
    );
    assert.equal(await tree.add(`${pfx}/KeyLocation`, '3'), STATUS.ok);
    assert.equal(await tree.add(`${pfx}/PFXKeyExportable`, 'yes'), STATUS.badRequest);
    assert.equal(
      await tree.add(`${pfx}/PFXCertBlob`, 'MIIK+/==', 'chr'),
      STATUS.ok,
      "chr where the DDF says bin, as Microsoft's examples send it",
    );
  });

  it('lists a subtree with ?list=Struct and ?list=StructData', async () => {
    const tree = new ManagementTree(roots);
    await tree.add(`${CSP}/CA/AA11/EncodedCertificate`, 'MIIA');
    await tree.add(`${CSP}/CA/BB22/EncodedCertificate`, 'MIIB');
    const struct = tree.get(`${CSP}/CA?list=Struct`);
    assert.deepEqual(
      struct.items.map((i) => i.uri),
      [
        `${CSP}/CA`,
        `${CSP}/CA/AA11`,
        `${CSP}/CA/AA11/EncodedCertificate`,
        `${CSP}/CA/BB22`,
        `${CSP}/CA/BB22/EncodedCertificate`,
      ],
    );
    assert.ok(struct.items.every((i) => i.data === undefined));
    const data = tree.get(`${CSP}/CA?list=StructData`);
    assert.deepEqual(
      data.items.filter((i) => i.data !== undefined).map((i) => i.data),
      ['MIIA', 'MIIB'],
    );
  });

  it('rolls back to a snapshot (Atomic), calls CSP hooks, and answers Exec without a handler 406', async () => {
    const calls: string[] = [];
    const tree = new ManagementTree(roots, {
      beforeWrite: (uri) =>
        uri.endsWith('/Challenge') ? STATUS.commandFailed : (calls.push(uri), undefined),
      exec: (uri) => (calls.push(`exec ${uri}`), STATUS.accepted),
      read: (uri) => (uri.endsWith('/IssuedBy') ? 'CN=computed' : undefined),
    });
    const snap = tree.snapshot();
    assert.equal(await tree.add(`${CSP}/CA/CC33/EncodedCertificate`, 'MIIC'), STATUS.ok);
    tree.restore(snap);
    assert.equal(tree.get(`${CSP}/CA/CC33`).status, STATUS.notFound);
    const install = './Device/Vendor/MSFT/ClientCertificateInstall/SCEP/wifi/Install';
    assert.equal(await tree.add(`${install}/Challenge`, 'x'), STATUS.commandFailed);
    assert.equal(
      tree.get('./Device/Vendor/MSFT/ClientCertificateInstall/SCEP/wifi').status,
      STATUS.notFound,
      'a refused Add leaves no implicit parent',
    );
    assert.equal(await tree.add(`${install}/ServerURL`, 'https://ca/scep'), STATUS.ok);
    assert.equal(await tree.exec(`${install}/Enroll`), STATUS.accepted);
    assert.deepEqual(calls, [
      `${CSP}/CA/CC33/EncodedCertificate`,
      `${install}/ServerURL`,
      `exec ${install}/Enroll`,
    ]);
    assert.equal(
      await new ManagementTree(roots).exec(`${install}/Enroll`),
      STATUS.notFound,
      'no SCEP node yet',
    );
    await tree.add(`${CSP}/CA/DD44/EncodedCertificate`, 'MIID');
    assert.equal(tree.get(`${CSP}/CA/DD44/IssuedBy`).items[0]?.data, 'CN=computed');
  });
});
