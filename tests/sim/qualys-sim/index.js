'use strict';
// qualys-sim: a local simulator of the Qualys Container Security API v1.3 (see README.md).
// start(opts) runs it in-process; server.js is the command-line entry point.

const http = require('http');
const { Model } = require('./model');
const { TokenIssuer, DEFAULT_TTL_SEC, DEFAULT_MODULES } = require('./jwt');
const { RateLimiter } = require('./ratelimit');
const { Faults } = require('./faults');
const { CallLog } = require('./calllog');
const { loadSeedFile } = require('./seed');
const routes = require('./routes');
const app = require('./app');

const DEFAULT_USERNAME = 'qfs-sim-user';
const DEFAULT_PASSWORD = 'qfs-sim-password';

function makeLogger(log) {
  if (typeof log === 'function') return log;
  if (log) return (line) => process.stderr.write(`qualys-sim ${new Date().toISOString()} ${line}\n`);
  return () => {};
}

// Builds the simulator state without any network listener.
// opts: { seed: path | seed object, profile: 'fast'|'realistic', username, password,
//         apiToken: string | [string], tokenTtl: seconds, modulesAllowed: [..], limits: {...},
//         timings: {...}, log: true | function(line) }
function createSimulator(opts) {
  const o = opts || {};
  const seedDoc = o.seed && typeof o.seed === 'object' ? o.seed : loadSeedFile(o.seed || undefined);
  const start = {
    username: o.username || DEFAULT_USERNAME,
    password: o.password || DEFAULT_PASSWORD,
    ttlSec: o.tokenTtl > 0 ? o.tokenTtl : DEFAULT_TTL_SEC,
    modules: Array.isArray(o.modulesAllowed) ? o.modulesAllowed.slice() : DEFAULT_MODULES.slice(),
    staticTokens: [].concat(o.apiToken || []),
  };
  const sim = {
    config: { username: start.username, password: start.password },
    model: new Model({ seedDoc, profile: o.profile || 'fast' }),
    tokens: new TokenIssuer({ ttlSec: start.ttlSec, modules: start.modules, staticTokens: start.staticTokens }),
    limiter: new RateLimiter(),
    faults: new Faults(routes.ENDPOINT_NAMES),
    calls: new CallLog(),
    log: makeLogger(o.log),
  };

  const applyStartKnobs = () => {
    if (o.limits) sim.limiter.configure(o.limits);
    if (o.timings) sim.model.setTimings(o.timings);
  };
  applyStartKnobs();

  // Back to the state right after start; issued tokens stay valid (the signing secret is kept).
  sim.resetAll = () => {
    sim.model.reset();
    sim.faults.clear();
    sim.limiter.reset(true);
    sim.calls.clear();
    sim.config.username = start.username;
    sim.config.password = start.password;
    sim.tokens.ttlSec = start.ttlSec;
    sim.tokens.modules = start.modules.slice();
    applyStartKnobs();
  };

  sim.describeConfig = () => ({
    username: sim.config.username,
    tokenTtlSec: sim.tokens.ttlSec,
    modulesAllowed: sim.tokens.modules.slice(),
    connectorCreateStatus: sim.model.connectorCreateStatus,
    staticTokens: sim.tokens.staticTokens.size,
  });

  // Admin knob: { username, password, tokenTtlSec, modulesAllowed, connectorCreateStatus, addApiToken }.
  sim.configure = (b) => {
    const body = b || {};
    if (body.username !== undefined) sim.config.username = String(body.username);
    if (body.password !== undefined) sim.config.password = String(body.password);
    if (body.tokenTtlSec !== undefined) sim.tokens.setTtl(body.tokenTtlSec);
    if (body.modulesAllowed !== undefined) {
      if (!Array.isArray(body.modulesAllowed)) throw new Error('modulesAllowed must be an array');
      sim.tokens.modules = body.modulesAllowed.map(String);
    }
    if (body.connectorCreateStatus !== undefined) {
      if (![200, 201].includes(body.connectorCreateStatus)) throw new Error('connectorCreateStatus must be 200 or 201');
      sim.model.connectorCreateStatus = body.connectorCreateStatus;
    }
    if (body.addApiToken !== undefined) sim.tokens.addStatic(String(body.addApiToken));
    return sim.describeConfig();
  };
  return sim;
}

// Starts the simulator. Resolves to { port, url, sim, close() }; close() drops open connections.
function start(opts) {
  const o = opts || {};
  const sim = createSimulator(o);
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    app.handle(sim, req, res).catch((e) => {
      sim.log(`unhandled error: ${e.stack || e}`);
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end('internal error');
      } else {
        res.destroy();
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const host = o.host || '127.0.0.1';
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port || 0, host, () => {
      server.removeListener('error', reject);
      const port = server.address().port;
      const urlHost = host.includes(':') ? `[${host}]` : host;
      const close = () => new Promise((done) => {
        server.close(() => done());
        for (const s of sockets) s.destroy();
      });
      resolve({ port, url: `http://${urlHost}:${port}`, sim, server, close });
    });
  });
}

module.exports = { start, createSimulator, DEFAULT_USERNAME, DEFAULT_PASSWORD };
