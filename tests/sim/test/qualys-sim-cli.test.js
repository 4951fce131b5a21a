'use strict';
// Contract tests of the qualys-sim command line: the one stdout line, options, and clean shutdown.

const { describe, it } = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { request } = require('../qualys-sim/client');
const { decodePayload } = require('../qualys-sim/jwt');

const SERVER = path.resolve(__dirname, '..', 'qualys-sim', 'server.js');

// Starts server.js and resolves once its first stdout line arrives.
function spawnServer(args) {
  const child = spawn(process.execPath, [SERVER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line; stderr: ${err}`)), 5000);
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(JSON.parse(out.split('\n')[0]));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited early with ${code}; stderr: ${err}`));
    });
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, out, err })));
  return { child, ready, exited, stdout: () => out };
}

describe('qualys-sim CLI', () => {
  it('prints one JSON line, honours its options and exits 0 on SIGTERM', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qualys-sim-'));
    const seedFile = path.join(dir, 'seed.json');
    fs.writeFileSync(seedFile, JSON.stringify({
      images: [{
        account: '123456789012', region: 'us-east-1', repository: 'solo', tags: ['v1'],
        digest: `sha256:${'1'.repeat(64)}`, image_sha: '2'.repeat(64), size: 10, operating_system: 'Alpine Linux 3.19.1',
        vulns: [], qualys: { state: 'scanned' },
      }],
    }));
    const srv = spawnServer(['--port', '0', '--seed', seedFile, '--profile', 'realistic', '--username', 'alice',
      '--password', 'secret&1', '--api-token', 'tok-123', '--token-ttl', '60']);
    try {
      const ready = await srv.ready;
      assert.deepStrictEqual(Object.keys(ready), ['service', 'port', 'url']);
      assert.strictEqual(ready.service, 'qualys-sim');
      assert.strictEqual(ready.url, `http://127.0.0.1:${ready.port}`);
      const auth = await request(ready.url, { method: 'POST', path: '/auth', form: { username: 'alice', password: 'secret&1', token: 'true' } });
      assert.strictEqual(auth.status, 201);
      const claims = decodePayload(auth.text);
      assert.ok(claims.exp - claims.iat <= 61);
      const images = await request(ready.url, { path: '/csapi/v1.3/images', token: 'tok-123' });
      assert.strictEqual(images.status, 200);
      assert.strictEqual(images.body.data[0].sha, '2'.repeat(64));
      const timings = await request(ready.url, { path: '/_sim/timings' });
      assert.strictEqual(timings.body.profile, 'realistic');
      assert.ok(timings.body.scanMs >= 10000);
    } finally {
      srv.child.kill('SIGTERM');
    }
    const end = await srv.exited;
    assert.strictEqual(end.code, 0);
    assert.strictEqual(end.out.trim().split('\n').length, 1, 'exactly one stdout line');
    assert.match(end.err, /POST \/auth -> 201/);
    assert.doesNotMatch(end.err, /secret/, 'passwords never reach the log');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses unknown options with exit status 2', async () => {
    const srv = spawnServer(['--bogus']);
    srv.ready.catch(() => {});
    const end = await srv.exited;
    assert.strictEqual(end.code, 2);
    assert.match(end.err, /unknown argument/);
  });
});
