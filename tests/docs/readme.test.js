// The README documents every variable the services read: each one in --help (the config tables
// and the AWS list) and each name the code reads appears in the README's configuration section.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const SRC = process.env.QFS_SOURCE_DIR || path.resolve(__dirname, '../..');
const BIN = process.env.QFS_BIN_DIR || path.join(SRC, 'build/bin');
const SERVICES = ['ingest', 'parser', 'cache', 'registry', 'scanner-poller', 'notifier'];
const README = fs.readFileSync(path.join(SRC, 'README.md'), 'utf8');
const CONFIG = README.slice(README.indexOf('## Configuration'), README.indexOf('\n## ', README.indexOf('## Configuration') + 5));

function help(service) {
  return execFileSync(path.join(BIN, `qfs-${service}`), ['--help'], { encoding: 'utf8' });
}

// Names in a --help text: the first word of each indented entry.
function helpNames(text) {
  const names = new Set();
  for (const line of text.split('\n')) {
    const m = /^ {2}([A-Z][A-Z0-9_]*(?:<SERVICE>)?)\s/.exec(line);
    if (m) names.add(m[1]);
  }
  return names;
}

// Environment variable names the C code reads by name: getenv("X") and the "QFS_/AWS_/QUALYS_"
// literals of config tables and the AWS module.
function sourceNames() {
  const names = new Set();
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.[ch]$/.test(e.name)) {
        const text = fs.readFileSync(p, 'utf8');
        for (const m of text.matchAll(/getenv\("([A-Z][A-Z0-9_]*)"\)/g)) names.add(m[1]);
        for (const m of text.matchAll(/\{"((?:QFS|QUALYS|AWS)_[A-Z0-9_]+)", QFS_CFG_/g)) names.add(m[1]);
        for (const m of text.matchAll(/"(AWS_[A-Z0-9_]+)"/g)) names.add(m[1]);
      }
    }
  };
  for (const d of ['common', 'services']) walk(path.join(SRC, d));
  names.delete('NO_PROXY'); // curl's own variable, extended by the http module, not a qfs setting
  return names;
}

test('every variable of every service is in its --help and in the README', () => {
  const all = new Set();
  for (const s of SERVICES) {
    const names = helpNames(help(s));
    assert.ok(names.size > 20, `qfs-${s} --help lists its variables`);
    for (const n of names) all.add(n);
  }
  for (const n of sourceNames()) {
    assert.ok(all.has(n) || n === 'NO_COLOR', `${n} is read by the code but missing from every --help`);
  }
  for (const n of all) assert.ok(CONFIG.includes('`' + n + '`'), `${n} is missing from the README's configuration section`);
});

test('the README does not document variables that nothing reads', () => {
  const known = new Set(sourceNames());
  for (const s of SERVICES) for (const n of helpNames(help(s))) known.add(n);
  for (const m of CONFIG.matchAll(/^\| `((?:QFS|QUALYS|AWS)_[A-Z0-9_]+)` \|/gm)) {
    assert.ok(known.has(m[1]), `the README's table documents ${m[1]}, which no service reads`);
  }
});

test('the README shows the two commands and how to watch', () => {
  for (const s of ['make demo', 'make test', 'docker compose', "nats sub 'qfs.>'", 'qfsctl tail'])
    assert.ok(README.includes(s), s);
});
