#!/usr/bin/env node
'use strict';
// Command-line entry point of qualys-sim. Prints one JSON line with the port once listening;
// everything else goes to stderr.

const { start } = require('./index');

const USAGE = `usage: node tests/sim/qualys-sim/server.js [--host 127.0.0.1] [--port 0] [--seed PATH]
       [--profile fast|realistic] [--username U] [--password P] [--api-token TOKEN]
       [--token-ttl SECONDS] [--quiet]`;

// Reads "--name value" and "--name=value" options into an object; unknown options are an error.
function parseArgs(argv) {
  const known = ['host', 'port', 'seed', 'profile', 'username', 'password', 'api-token', 'token-ttl'];
  const out = { apiToken: [] };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') return { help: true };
    if (arg === '--quiet') { out.quiet = true; continue; }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m || !known.includes(m[1])) throw new Error(`unknown argument "${arg}"`);
    let value = m[2];
    if (value === undefined) {
      i += 1;
      if (i >= argv.length) throw new Error(`--${m[1]} needs a value`);
      value = argv[i];
    }
    if (m[1] === 'api-token') out.apiToken.push(value);
    else out[m[1]] = value;
  }
  return out;
}

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`qualys-sim: ${e.message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const port = args.port === undefined ? 0 : Number(args.port);
  const ttl = args['token-ttl'] === undefined ? undefined : Number(args['token-ttl']);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write('qualys-sim: --port must be 0..65535\n');
    process.exit(2);
  }
  if (ttl !== undefined && !(ttl > 0)) {
    process.stderr.write('qualys-sim: --token-ttl must be a positive number of seconds\n');
    process.exit(2);
  }
  if (args.profile !== undefined && !['fast', 'realistic'].includes(args.profile)) {
    process.stderr.write('qualys-sim: --profile must be fast or realistic\n');
    process.exit(2);
  }
  let handle;
  try {
    handle = await start({
      host: args.host || '127.0.0.1',
      port,
      seed: args.seed,
      profile: args.profile || 'fast',
      username: args.username,
      password: args.password,
      apiToken: args.apiToken,
      tokenTtl: ttl,
      log: !args.quiet,
    });
  } catch (e) {
    process.stderr.write(`qualys-sim: cannot start: ${e.message}\n`);
    process.exit(1);
  }
  const urlHost = (args.host || '127.0.0.1').includes(':') ? `[${args.host}]` : args.host || '127.0.0.1';
  process.stdout.write(`${JSON.stringify({ service: 'qualys-sim', port: handle.port, url: `http://${urlHost}:${handle.port}` })}\n`);
  let stopping = false;
  const stop = (sig) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`qualys-sim: ${sig}, closing\n`);
    handle.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main();
