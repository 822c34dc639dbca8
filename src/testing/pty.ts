/**
 * Test kit: runs a command on a real pseudo-terminal (Python's `pty`, Debian's python3) and
 * answers its prompts from a script, as a person at a terminal would: for the CLI's questions
 * (passwords without echo, yes/no), which it asks only when stdin and stderr are terminals.
 * The terminal merges stdout and stderr into `output`.
 */
import { python } from './tools.ts';

const DRIVER = `
import json, os, pty, select, sys, time
argv, script, env = (json.loads(a) for a in sys.argv[1:4])
pid, fd = pty.fork()
if pid == 0:
    os.execve(argv[0], argv, env)
out, pos = b'', 0
def more(deadline):
    global out
    r, _, _ = select.select([fd], [], [], max(0, deadline - time.time()))
    if not r:
        return False
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        return False
    out += chunk
    return bool(chunk)
for expect, answer in script:
    deadline = time.time() + 30
    while out.find(expect.encode(), pos) < 0:
        if not more(deadline):
            sys.stdout.write(json.dumps({'status': None, 'output': out.decode('utf-8', 'replace'), 'waiting': expect}))
            os.kill(pid, 9)
            sys.exit(0)
    pos = out.find(expect.encode(), pos) + len(expect)
    os.write(fd, (answer + '\\r').encode())
while more(time.time() + 30):
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.write(json.dumps({'status': os.waitstatus_to_exitcode(status), 'output': out.decode('utf-8', 'replace')}))
`;

export interface PtyRun {
  /** Exit code, or null when a prompt never came (then `waiting` names it). */
  readonly status: number | null;
  /** Everything the terminal showed (stdout and stderr, CRLF line ends). */
  readonly output: string;
  readonly waiting?: string;
}

/**
 * Runs `argv` (argv[0] an absolute path) on a terminal; for each `[expect, answer]` waits for
 * `expect` in the output, then types `answer` and Enter.
 */
export function runInPty(
  argv: readonly string[],
  script: readonly (readonly [expect: string, answer: string])[],
  env: NodeJS.ProcessEnv,
): PtyRun {
  const out = python(DRIVER, [JSON.stringify(argv), JSON.stringify(script), JSON.stringify(env)]);
  return JSON.parse(out.toString()) as PtyRun;
}
