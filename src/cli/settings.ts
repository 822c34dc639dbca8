/**
 * Server settings from the command line, the environment and a configuration file, in that
 * order of precedence, checked before anything starts.
 *
 * A setting is an option registered with {@link setting}: its flag, its environment variable,
 * its built-in default, and what kind of value it takes. `--config FILE` (or `CERTPOST_CONFIG`)
 * names a TOML file whose keys are the long flags without their dashes:
 *
 * ```toml
 * data = "/var/lib/certpost"
 * listen = "0.0.0.0:8443"
 * public-url = "https://mdm.contoso.com"
 * tls = true
 * workers = 2
 * trust-proxy = ["10.0.0.0/8"]
 * mail-blocked = ["cer", "crt"]
 * ```
 *
 * - One file serves every server-side command: `serve` takes all of it; `doctor`, `backup`,
 *   the admin commands take the keys they have (`data`, `database`, `pkcs11-pin-file` …) and
 *   leave the rest. A key no command knows is an error (a typo must not pass silently), with the
 *   nearest known key suggested.
 * - Values must be of the setting's kind (text, whole number, true/false, list of text);
 *   choices are checked whatever the source. Relative paths in the file are relative to the
 *   file, not to where the command runs.
 * - A secret written into the file itself (`scep-challenge`) is refused while the file is
 *   readable by other users.
 * - Every message names where the value came from: `--listen`, `CERTPOST_LISTEN`, or
 *   `listen in /etc/certpost/certpost.toml` ({@link sourceOf}).
 *
 * TOML (smol-toml) rather than JSON: operators comment their configuration.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { parse as parseToml, TomlError } from 'smol-toml';
import { CliError, EXIT } from './exit-codes.ts';

/** What a setting's value is: how the file may write it, and how the environment's text reads. */
export type SettingKind = 'text' | 'path' | 'count' | 'boolean' | 'list';

export interface SettingSpec {
  /** The environment variable, if the setting has one. */
  readonly env?: string;
  readonly default?: string | boolean;
  /** Default `text`. */
  readonly kind?: SettingKind;
  /** Refused in a configuration file other users may read. */
  readonly secret?: boolean;
  readonly choices?: readonly string[];
}

/** Every option registered as a setting, with its spec (the file's keys are their long flags). */
const SPECS = new WeakMap<Option, SettingSpec>();
/** Where each setting of a command got its value, for messages. */
const SOURCES = new WeakMap<Command, Map<string, string>>();

/**
 * Registers `flags` on `cmd` as a setting. The help says which environment variable sets it;
 * `--config` is added to the command once, with the first setting.
 */
export function setting(
  cmd: Command,
  flags: string,
  help: string,
  spec: SettingSpec = {},
): Command {
  const option = new Option(flags, spec.env ? `${help} (env ${spec.env})` : help);
  if (spec.default !== undefined) option.default(spec.default);
  if (spec.choices) option.choices(spec.choices);
  SPECS.set(option, spec);
  if (!cmd.options.some((o) => o.long === '--config'))
    cmd.option(
      '--config <file>',
      'TOML file of settings: long flags without dashes as keys (env CERTPOST_CONFIG); flags and environment win over it',
    );
  return cmd.addOption(option);
}

/** `--listen` → `listen`: the key of an option in the configuration file. */
const keyOf = (o: Option) => (o.long ?? '').replace(/^--/, '');

/** Every setting registered anywhere under `root`, by file key. */
function allSettings(root: Command): Map<string, { option: Option; spec: SettingSpec }> {
  const found = new Map<string, { option: Option; spec: SettingSpec }>();
  const walk = (c: Command) => {
    for (const option of c.options) {
      const spec = SPECS.get(option);
      if (spec) found.set(keyOf(option), { option, spec });
    }
    c.commands.forEach(walk);
  };
  walk(root);
  return found;
}

/**
 * Where `cmd`'s setting `attribute` (camelCase, as in its options) came from: its flag (the
 * command line or the default), its environment variable, or its key in the file.
 */
export function sourceOf(cmd: Command, attribute: string): string {
  return SOURCES.get(cmd)?.get(attribute) ?? attribute;
}

/** A file's value as the setting's kind wants it, or a message saying what was expected. */
function fromFile(value: unknown, kind: SettingKind, base: string): string | boolean {
  switch (kind) {
    case 'boolean':
      if (typeof value === 'boolean') return value;
      throw new Error('must be true or false');
    case 'count':
      if (typeof value === 'number' && Number.isInteger(value)) return String(value);
      if (typeof value === 'string') return value;
      throw new Error('must be a whole number');
    case 'list':
      if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.join(',');
      if (typeof value === 'string') return value;
      throw new Error('must be a list of text, e.g. ["a", "b"]');
    case 'path':
      if (typeof value === 'string' && value !== '') return resolve(base, value);
      throw new Error('must be a path in quotes');
    case 'text':
      if (typeof value === 'string') return value;
      throw new Error('must be text in quotes');
  }
}

/** The environment's text for a setting of `kind`. */
function fromEnv(text: string, kind: SettingKind): string | boolean {
  if (kind !== 'boolean') return text;
  if (/^(1|true|yes|on)$/i.test(text)) return true;
  if (/^(0|false|no|off|)$/i.test(text)) return false;
  throw new Error('must be 1 or 0 (true or false)');
}

/** The known key nearest to `key` (edit distance at most 3), for "did you mean". */
function nearest(key: string, known: Iterable<string>): string | undefined {
  let best: [string, number] | undefined;
  for (const k of known) {
    const d = editDistance(key, k);
    if (d <= 3 && (!best || d < best[1])) best = [k, d];
  }
  return best?.[0];
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++)
      next[j] = Math.min(
        next[j - 1]! + 1,
        row[j]! + 1,
        row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    row = next;
  }
  return row[b.length]!;
}

/** Reads and checks a configuration file against every setting `root` knows. */
async function readConfig(
  path: string,
  root: Command,
): Promise<Map<string, { value: string | boolean; source: string }>> {
  let text: string;
  let mode: number;
  try {
    text = await readFile(path, 'utf8');
    mode = (await stat(path)).mode;
  } catch (e) {
    throw new CliError(
      `cannot read the configuration file ${path}: ${(e as Error).message}`,
      EXIT.input,
    );
  }
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text);
  } catch (e) {
    const where = e instanceof TomlError ? ` at line ${e.line}, column ${e.column}` : '';
    const first = ((e as Error).message.split('\n')[0] ?? '').trim();
    throw new CliError(`${path}${where}: not valid TOML: ${first}`, EXIT.usage);
  }
  const known = allSettings(root);
  const values = new Map<string, { value: string | boolean; source: string }>();
  for (const [key, raw] of Object.entries(doc)) {
    const entry = known.get(key);
    if (!entry) {
      const hint = nearest(key, known.keys());
      throw new CliError(
        `${path}: unknown setting "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`,
        EXIT.usage,
      );
    }
    if (entry.spec.secret && (mode & 0o077) !== 0)
      throw new CliError(
        `${path} holds the secret "${key}" but other users may read it: chmod 600 ${path}, or set ${entry.spec.env ?? 'it'} in the environment instead`,
        EXIT.usage,
      );
    const source = `${key} in ${path}`;
    try {
      values.set(key, {
        value: fromFile(raw, entry.spec.kind ?? 'text', dirname(resolve(path))),
        source,
      });
    } catch (e) {
      throw new CliError(`${source}: ${(e as Error).message}`, EXIT.usage);
    }
  }
  return values;
}

/**
 * Resolves `cmd`'s settings before its action runs (a `preAction` hook on the root): the
 * command line, else the environment, else the configuration file, else the default. Choices
 * are checked for every source (commander checks only the command line's).
 */
export async function applySettings(root: Command, cmd: Command): Promise<void> {
  const mine = cmd.options.filter((o) => SPECS.has(o));
  if (mine.length === 0) return;
  const configPath =
    cmd.getOptionValueSource('config') === 'cli'
      ? (cmd.getOptionValue('config') as string)
      : process.env['CERTPOST_CONFIG'] || undefined;
  const file = configPath ? await readConfig(configPath, root) : new Map();
  const sources = new Map<string, string>();
  for (const option of mine) {
    const spec = SPECS.get(option)!;
    const attribute = option.attributeName();
    sources.set(attribute, option.long ?? attribute);
    if (cmd.getOptionValueSource(attribute) === 'cli') continue;
    const envText = spec.env !== undefined ? process.env[spec.env] : undefined;
    const fromConfig = file.get(keyOf(option));
    let value: string | boolean | undefined;
    let source: string;
    if (envText !== undefined && envText !== '') {
      source = spec.env!;
      try {
        value = fromEnv(envText, spec.kind ?? 'text');
      } catch (e) {
        throw new CliError(`${source}: ${(e as Error).message}`, EXIT.usage);
      }
    } else if (fromConfig) {
      ({ value, source } = fromConfig);
    } else continue; // the default, or nothing
    if (spec.choices && typeof value === 'string' && !spec.choices.includes(value))
      throw new CliError(
        `${source}: "${value}" is not one of ${spec.choices.join(', ')}`,
        EXIT.usage,
      );
    cmd.setOptionValueWithSource(attribute, value, source === spec.env ? 'env' : 'config');
    sources.set(attribute, source);
  }
  SOURCES.set(cmd, sources);
}
