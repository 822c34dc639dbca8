/** The server's session step: statuses, correlation by CmdRef, budget and 1222, session end. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { answerDevice, withIds, type QueuedCommand } from './server-session.ts';
import { buildSyncML, parseSyncML, type Command, type SyncMLMessage } from './syncml.ts';

const pkg1 = parseSyncML(
  readFileSync(new URL('./testdata/client-pkg1.xml', import.meta.url), 'utf8'),
);

const get = (uri: string): Command => ({ kind: 'Get', cmdId: '', items: [{ target: uri }] });
const add = (uri: string, data: string): Command => ({
  kind: 'Add',
  cmdId: '',
  items: [{ target: uri, data }],
});
const queued = (
  id: string,
  command: Command,
  sentSession: string | null = null,
): QueuedCommand => ({
  id,
  command,
  sentSession,
});

/** A device message of session 1 with these commands after the header. */
function deviceMessage(msgId: string, body: Command[], final = true): SyncMLMessage {
  return { header: { ...pkg1.header, msgId }, body, final };
}

const status = (cmdRef: string, cmd: string, data: string, cmdId = '9'): Command => ({
  kind: 'Status',
  cmdId,
  msgRef: '1',
  cmdRef,
  cmd,
  data,
});

describe('server session step', () => {
  it('answers package 1: header and every command get a Status, DevInfo is reported, queued commands follow', () => {
    const step = answerDevice({ message: pkg1, queue: [queued('q1', get('./DevDetail/SwV'))] });
    const { reply } = step;
    assert.deepEqual(reply.header, {
      sessionId: '1',
      msgId: '1',
      target: pkg1.header.source,
      source: pkg1.header.target,
    });
    assert.deepEqual(
      reply.body.map((c) => (c.kind === 'Status' ? `${c.cmd}:${c.cmdRef}=${c.data}` : c.kind)),
      ['SyncHdr:0=200', 'Alert:2=200', 'Alert:3=200', 'Replace:4=200', 'Get'],
    );
    assert.equal(reply.body[4]?.kind === 'Get' && reply.body[4].cmdId, 'q1');
    assert.deepEqual(step.sent, ['q1']);
    assert.equal(step.reported['./DevInfo/DevId'], pkg1.header.source);
    assert.deepEqual(
      step.alerts.map((a) => a.code),
      ['1201', '1224'],
    );
    assert.equal(step.ended, false);
    assert.equal(reply.final, true);
    parseSyncML(buildSyncML(reply)); // it is a well-formed message
  });

  it('matches Statuses and Results to queued commands by CmdRef, Atomic children included', () => {
    const atomic: Command = {
      kind: 'Atomic',
      cmdId: '',
      commands: [add('./Vendor/MSFT/A', '1'), add('./Vendor/MSFT/B', '2')],
    };
    const queue = [queued('a1', atomic, '1'), queued('g1', get('./DevInfo/Man'), '1')];
    const step = answerDevice({
      message: deviceMessage('2', [
        status('0', 'SyncHdr', '200'),
        status('a1', 'Atomic', '507'),
        status('a1.1', 'Add', '216'),
        status('a1.2', 'Add', '418'),
        status('g1', 'Get', '200'),
        {
          kind: 'Results',
          cmdId: '7',
          cmdRef: 'g1',
          items: [{ source: './DevInfo/Man', data: 'Contoso' }],
        },
        status('someone-else', 'Add', '200'),
      ]),
      queue,
    });
    assert.deepEqual(step.outcomes, [
      {
        id: 'a1',
        status: 507,
        results: [],
        children: [
          { index: 1, cmd: 'Add', status: 216 },
          { index: 2, cmd: 'Add', status: 418 },
        ],
      },
      {
        id: 'g1',
        status: 200,
        results: [{ source: './DevInfo/Man', data: 'Contoso' }],
        children: [],
      },
    ]);
    // Only the Results needs a Status: the session ends here.
    assert.deepEqual(
      step.reply.body.map((c) => c.kind === 'Status' && c.cmd),
      ['SyncHdr', 'Results'],
    );
    assert.equal(step.ended, true);
  });

  it('reads a status code that is not three digits as 500 (found by fuzzing: 1e308 reached the store)', () => {
    const atomic: Command = { kind: 'Atomic', cmdId: '', commands: [add('./Vendor/MSFT/A', '1')] };
    const step = answerDevice({
      message: deviceMessage('2', [
        status('a1', 'Atomic', '1e308'),
        status('a1.1', 'Add', '2000000000'),
        status('g1', 'Get', 'OK'),
      ]),
      queue: [queued('a1', atomic, '1'), queued('g1', get('./A'), '1')],
    });
    assert.deepEqual(
      step.outcomes.map((o) => [o.status, ...o.children.map((c) => c.status)]),
      [[500, 500], [500]],
    );
  });

  it('does not send a command twice in one session; sends again one lost in an earlier session', () => {
    const queue = [queued('old', get('./A'), '0'), queued('now', get('./B'), '1')];
    const step = answerDevice({
      message: deviceMessage('2', [status('0', 'SyncHdr', '200')]),
      queue,
    });
    assert.deepEqual(step.sent, ['old']);
  });

  it('splits a queue over the budget across messages: no Final, then the rest after Alert 1222', () => {
    const big = 'x'.repeat(2000);
    const queue = [1, 2, 3].map((i) => queued(`c${i}`, add(`./Vendor/MSFT/N${i}`, big)));
    const first = answerDevice({ message: pkg1, queue, maxMessageBytes: 5000 });
    assert.deepEqual(first.sent, ['c1', 'c2']);
    assert.equal(first.reply.final, false);
    assert.ok(Buffer.byteLength(buildSyncML(first.reply)) <= 5000);
    const again = queue.map((q) => (first.sent.includes(q.id) ? { ...q, sentSession: '1' } : q));
    const second = answerDevice({
      message: deviceMessage('2', [
        status('0', 'SyncHdr', '200'),
        status('c1', 'Add', '200'),
        status('c2', 'Add', '200'),
        { kind: 'Alert', cmdId: '4', data: '1222', items: [] },
      ]),
      queue: again,
      maxMessageBytes: 5000,
    });
    assert.deepEqual(second.sent, ['c3']);
    assert.equal(second.reply.final, true);
    assert.deepEqual(
      second.outcomes.map((o) => o.id),
      ['c1', 'c2'],
    );
  });

  it('a command larger than the budget still goes, alone', () => {
    const step = answerDevice({
      message: pkg1,
      queue: [queued('big', add('./Vendor/MSFT/X', 'y'.repeat(9000)))],
      maxMessageBytes: 1000,
    });
    assert.deepEqual(step.sent, ['big']);
  });

  it('a device still sending its package (no Final) or aborting gets Statuses only', () => {
    const queue = [queued('q', get('./A'))];
    const partial = answerDevice({ message: { ...pkg1, final: false }, queue });
    assert.deepEqual(partial.sent, []);
    assert.ok(
      partial.reply.body.some((c) => c.kind === 'Alert' && c.data === '1222'),
      'and asks for the rest with Alert 1222',
    );
    const abort = answerDevice({
      message: deviceMessage('2', [{ kind: 'Alert', cmdId: '2', data: '1223', items: [] }]),
      queue,
    });
    assert.deepEqual(abort.sent, []);
    assert.equal(abort.ended, true, 'its Alert is answered; a Status-only reply ends the session');
  });

  it('refuses management commands from a device (405) and unknown elements (400)', () => {
    const step = answerDevice({
      message: deviceMessage('2', [
        get('./Server/secret'),
        { kind: 'Unknown', name: 'Map', cmdId: '5' },
      ]),
      queue: [],
    });
    assert.deepEqual(
      step.reply.body.map((c) => c.kind === 'Status' && `${c.cmd}=${c.data}`),
      ['SyncHdr=200', 'Get=405', 'Map=400'],
    );
  });

  it('numbers an Atomic`s children under its id', () => {
    const c = withIds(
      { kind: 'Atomic', cmdId: '', commands: [get('./A'), add('./B', '1')] },
      'abc',
    );
    assert.ok(c.kind === 'Atomic');
    assert.deepEqual(
      c.commands.map((x) => x.kind !== 'Unknown' && x.cmdId),
      ['abc.1', 'abc.2'],
    );
  });
});
