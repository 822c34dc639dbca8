/**
 * What a fuzz target is: a function over bytes with a contract. It must return, or throw the
 * typed error of the component it exercises (`expected`); any other exception, an execution
 * longer than the timeout, or memory growing past the worker's limit is a finding.
 */
export interface FuzzTarget {
  readonly name: string;
  /** One line: which entry points run on each input. */
  readonly description: string;
  /** Seed inputs in a fixed order, each with where it comes from. */
  seeds(): Promise<readonly Uint8Array[]>;
  /** Runs one input. May check properties of what it got back and throw when one fails. */
  run(input: Uint8Array): unknown;
  /** True for the refusals the contract allows (PkiError, ScepError, SyncMLError, …). */
  expected(error: unknown): boolean;
  /** Tokens the mutator inserts whole. */
  readonly dictionary?: readonly string[];
  /** Largest input ordinary mutations make (default 64 KiB). */
  readonly maxLen?: number;
  /** Largest input amplification makes: the parser's own size limit and a little more. */
  readonly bigLen?: number;
  /**
   * Directory (relative to the repository) of regression inputs: every finding of this target,
   * saved next to the parser it exercises, replayed by regressions.test.ts.
   */
  readonly regressions: string;
  /**
   * Prepares what every run needs (a fixture: a server with a device, an enrolled device).
   * Called before the first execution and outside the time of any; `run` must also work
   * without it (it sets up on first use).
   */
  setUp?(): Promise<void>;
  /**
   * Releases what the target set up (a fixture's server, temporary files). The engine calls
   * it when a run ends; `run` may be called again after it and sets up anew.
   */
  close?(): Promise<void>;
}

/** A contract of the code under test that an input broke (not a refusal: a bug). */
export class ContractViolation extends Error {
  override readonly name = 'ContractViolation';
}

/** A finding, as the engine reports it. `input` reproduces it through `FuzzTarget.run`. */
export interface Finding {
  readonly kind: 'crash' | 'timeout' | 'memory';
  /** What makes two findings the same bug (error type, message shape and place, or the kind). */
  readonly signature: string;
  readonly message: string;
  readonly input: Uint8Array;
}

/**
 * Classifies an exception that escaped a target: the signature keeps the error's name, code,
 * message with numbers blanked, and the first stack frame outside the fuzzer.
 */
export function crashOf(error: unknown, input: Uint8Array): Finding {
  const e = error instanceof Error ? error : new Error(`non-Error thrown: ${String(error)}`);
  const code = (e as { code?: unknown }).code;
  const frame =
    (e.stack ?? '')
      .split('\n')
      .slice(1)
      .map((l) => l.trim())
      .find((l) => !l.includes('/src/fuzz/') && l.startsWith('at ')) ?? '';
  const place = frame.replace(/^at /, '').replace(/^.*\/(src|node_modules)\//, '$1/');
  const shape = e.message.replace(/\d+/g, 'N').slice(0, 120);
  return {
    kind: 'crash',
    signature: `${e.name}${typeof code === 'string' ? `[${code}]` : ''}: ${shape} @ ${place}`,
    message: `${e.stack ?? e.message}`,
    input,
  };
}

/**
 * Key-derivation budget of the targets that read PKCS#12 files and encrypted keys (the device
 * reads the PFX a server sends). The default (2.5 million, about a second) is a legitimate
 * cost, not a hang, so the targets use a smaller one: then a read that still runs long derives
 * keys the budget does not see, which is the bug to find. The default itself is tested in
 * pkcs12.test.ts.
 */
export const FUZZ_MAX_ITERATIONS = 100_000;
