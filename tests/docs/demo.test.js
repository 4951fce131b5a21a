// make demo, end to end: the newcomer's first command works and shows what it promises.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const SRC = process.env.QFS_SOURCE_DIR || path.resolve(__dirname, '../..');
const BIN = process.env.QFS_BIN_DIR || path.join(SRC, 'build/bin');

test('make demo runs the pipeline and prints the notifications', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qfs-demo-'));
  try {
    const r = spawnSync('make', ['--no-print-directory', '-C', SRC, 'demo', `BUILD_DIR=${path.dirname(BIN)}`], {
      encoding: 'utf8',
      env: Object.assign({}, process.env, { QFS_DEMO_DIR: path.join(dir, 'stack'), NO_COLOR: '1' }),
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 240000,
    });
    const out = r.stdout + r.stderr;
    assert.strictEqual(r.status, 0, out.slice(-4000));
    // The three notifications, with the seeded counts.
    assert.match(out, /qfs: 1C\/1H web:1\.4\.2 in 111122223333\/eu-west-1/);
    assert.match(out, /qfs: 0C\/1H worker:2\.0\.0 in 111122223333\/eu-west-1/);
    assert.match(out, /qfs: 0C\/2H batch\/migrate:2026\.05 in 222233334444\/us-east-1/);
    assert.match(out, /findings {2}1 critical, 1 high, 1 medium, 1 low, 0 info/);
    // The Docker Hub container is shown as not scanned, and why.
    assert.match(out, /skipped {3}nginx:1\.25: not_ecr/);
    // The second account's task was looked up through its role.
    assert.match(out, /deployed {2}RunTask in 222233334444\/us-east-1/);
    assert.match(out, /3 notification\(s\)\./);
    // Each step was shown as it happened, and the stack is gone.
    assert.match(out, /skip {10}111122223333\/eu-west-1 {2}nginx:1\.25/);
    assert.ok(!fs.existsSync(path.join(dir, 'stack')), 'the demo stack was taken down');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
