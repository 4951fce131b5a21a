'use strict';
// Helpers for the aws-sim contract tests: start a sim in-process, build real AWS SDK v3 clients
// pointed at it, call the admin API, and wait for a condition with a deadline.

const http = require('http');
const { start } = require('./server');
const { HUB_ACCESS_KEY_ID, HUB_SECRET_ACCESS_KEY } = require('./identity');

const HUB_CREDENTIALS = { accessKeyId: HUB_ACCESS_KEY_ID, secretAccessKey: HUB_SECRET_ACCESS_KEY };

// startSim starts a sim on an ephemeral loopback port with the shared seed (or opts.seed).
async function startSim(opts) {
  return start(Object.assign({ port: 0 }, opts || {}));
}

// client builds an SDK client class instance for the sim. opts: {credentials, region, maxAttempts,
// systemClockOffset}. Retries are off by default so that a test sees the first answer.
function client(Cls, sim, opts) {
  const o = opts || {};
  const c = new Cls({
    endpoint: sim.url,
    region: o.region || 'eu-west-1',
    credentials: o.credentials || HUB_CREDENTIALS,
    maxAttempts: o.maxAttempts === undefined ? 1 : o.maxAttempts,
  });
  if (o.systemClockOffset !== undefined) c.config.systemClockOffset = o.systemClockOffset;
  return c;
}

// admin calls the sim's admin API and resolves to {status, body}.
function admin(sim, method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? '' : JSON.stringify(body);
    const u = new URL(path, sim.url);
    const req = http.request({
      host: u.hostname, port: u.port, method, path: u.pathname + u.search, agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed = text;
        try {
          parsed = JSON.parse(text);
        } catch (e) {
          parsed = text;
        }
        resolve({ status: res.statusCode, headers: res.headers, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

// rawRequest sends an arbitrary HTTP request to the sim and resolves to {status, headers, body}.
function rawRequest(sim, opts, body) {
  return new Promise((resolve, reject) => {
    const u = new URL(opts.path || '/', sim.url);
    const req = http.request({ host: u.hostname, port: u.port, method: opts.method || 'POST', path: u.pathname + u.search, headers: opts.headers || {}, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body || '');
  });
}

// waitFor polls fn until it returns a truthy value or the deadline passes.
async function waitFor(fn, timeoutMs, what) {
  const deadline = Date.now() + (timeoutMs || 5000);
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + (what || 'condition'));
    await new Promise((r) => setTimeout(r, 25));
  }
}

// rejects runs p and returns the error it rejects with, failing if it resolves.
async function rejects(p) {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

module.exports = { startSim, client, admin, rawRequest, waitFor, rejects, HUB_CREDENTIALS };
