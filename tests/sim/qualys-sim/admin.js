'use strict';
// The admin API under /_sim/: seed, faults, timings, limits, token expiry, call log, state, reset.
// It needs no authentication and is never rate limited, faulted or written to the call log.

const { json, error, send } = require('./respond');
const views = require('./views');

function parseBody(buf) {
  if (!buf || buf.length === 0) return {};
  return JSON.parse(buf.toString('utf8'));
}

function stateSnapshot(sim, now) {
  const model = sim.model;
  model.advance(now);
  const entriesBySha = new Map();
  for (const e of model.catalogue) {
    if (!entriesBySha.has(e.sha)) entriesBySha.set(e.sha, []);
    entriesBySha.get(e.sha).push(e);
  }
  const shas = new Set(entriesBySha.keys());
  for (const sha of model.images.keys()) shas.add(sha);
  const images = [...shas].sort().map((sha) => {
    const rec = model.images.get(sha);
    const entries = entriesBySha.get(sha) || [];
    const reg = rec ? model.registryFor(rec) : null;
    return {
      sha,
      imageId: sha.slice(0, 12),
      lifecycle: model.lifecycle(sha),
      seeded: entries.map((e) => ({ registry: e.host, repository: e.repository, tags: e.tags })),
      repo: rec ? rec.repos.map((r) => Object.assign({}, r)) : [],
      registryUuid: reg ? reg.uuid : null,
      firstFound: rec ? rec.firstFound : null,
      lastScanned: rec ? rec.lastScanned : null,
      scanStatus: rec ? rec.scanStatus : null,
      scanErrorCode: rec ? rec.scanErrorCode : null,
      vulnerabilities: rec && rec.state === 'scanned' ? views.severityCounts(rec.vulns) : null,
    };
  });
  return {
    now,
    awsBase: model.describeAwsBase(),
    registries: [...model.registries.values()].map((r) => views.registryDetail(model, r)),
    connectors: model.connectors.map((c) => Object.assign(views.connectorItem(c), { accountType: c.accountType, created: c.created })),
    schedules: [...model.schedules.values()].map((j) => Object.assign(views.scheduleItem(j), {
      registryUuid: j.registryUuid,
      targets: j.targets.map((t) => ({ sha: t.sha, repository: t.entry.repository, tags: [...t.tags], state: t.state })),
    })),
    images,
    timings: Object.assign({}, model.timings),
    limits: sim.limiter.describe(now),
    faults: sim.faults.list(),
    scanFailures: model.failures.map((f) => Object.assign({}, f)),
    tokens: { ttlSec: sim.tokens.ttlSec, issued: sim.tokens.seq, modulesAllowed: sim.tokens.modules.slice() },
    config: { username: sim.config.username, connectorCreateStatus: model.connectorCreateStatus },
  };
}

// Each admin route returns a result or throws; plain Errors become 400s naming the problem.
const ADMIN = {
  'GET /_sim/health': () => json(200, { ok: true, service: 'qualys-sim' }),

  'GET /_sim/state': (sim, ctx) => json(200, stateSnapshot(sim, ctx.now)),

  'POST /_sim/reset': (sim) => {
    sim.resetAll();
    return json(200, { ok: true });
  },

  'POST /_sim/seed': (sim, ctx) => {
    const body = ctx.body;
    const mode = body.mode !== undefined ? body.mode : ctx.query.get('mode') || 'replace';
    const present = body.present !== undefined ? body.present : ctx.query.get('present') || undefined;
    const seedDoc = body.seed !== undefined ? body.seed : body;
    const loaded = sim.model.loadSeed(seedDoc, { mode, present });
    return json(200, { ok: true, mode, loaded, catalogue: sim.model.catalogue.length });
  },

  'GET /_sim/faults': (sim) => json(200, { faults: sim.faults.list() }),

  'POST /_sim/faults': (sim, ctx) => {
    const b = ctx.body;
    const specs = Array.isArray(b) ? b : Array.isArray(b.rules) ? b.rules : [b];
    const added = specs.map((s) => sim.faults.add(s));
    return json(200, { added, faults: sim.faults.list() });
  },

  'DELETE /_sim/faults': (sim) => {
    sim.faults.clear();
    return json(200, { ok: true });
  },

  'GET /_sim/timings': (sim) => json(200, sim.model.timings),
  'POST /_sim/timings': (sim, ctx) => json(200, sim.model.setTimings(ctx.body)),

  'GET /_sim/limits': (sim, ctx) => json(200, sim.limiter.describe(ctx.now)),
  'POST /_sim/limits': (sim, ctx) => {
    sim.limiter.configure(ctx.body);
    return json(200, sim.limiter.describe(ctx.now));
  },

  // { ttlSec?: seconds for tokens issued from now on, includeStatic?: also expire --api-token tokens,
  //   expire?: false to only change the TTL }.
  'POST /_sim/expire-tokens': (sim, ctx) => {
    const b = ctx.body;
    if (b.ttlSec !== undefined) sim.tokens.setTtl(b.ttlSec);
    if (b.expire !== false) sim.tokens.expireAll({ includeStatic: Boolean(b.includeStatic) }, ctx.now);
    return json(200, { ok: true, ttlSec: sim.tokens.ttlSec, expiredThrough: sim.tokens.expiredWatermark });
  },

  'GET /_sim/calls': (sim, ctx) => {
    const since = ctx.query.get('since');
    return json(200, sim.calls.snapshot({ since: since === null ? 0 : Number(since), endpoint: ctx.query.get('endpoint') }));
  },
  'DELETE /_sim/calls': (sim) => {
    sim.calls.clear();
    return json(200, { ok: true });
  },

  'GET /_sim/scan-failures': (sim) => json(200, { scanFailures: sim.model.failures }),
  'POST /_sim/scan-failures': (sim, ctx) => json(200, sim.model.addFailure(ctx.body)),
  'DELETE /_sim/scan-failures': (sim) => {
    sim.model.failures = [];
    return json(200, { ok: true });
  },

  'GET /_sim/aws-base': (sim) => json(200, sim.model.describeAwsBase()),
  'POST /_sim/aws-base': (sim, ctx) => json(200, sim.model.configureAwsBase(ctx.body)),

  'GET /_sim/config': (sim) => json(200, sim.describeConfig()),
  'POST /_sim/config': (sim, ctx) => json(200, sim.configure(ctx.body)),
};

async function handle(sim, req, res, url, bodyBuf) {
  const now = Date.now();
  let result;
  try {
    const ctx = { now, query: url.searchParams, body: parseBody(bodyBuf) };
    const key = `${req.method} ${url.pathname}`;
    const faultDelete = /^\/_sim\/faults\/([^/]+)$/.exec(url.pathname);
    if (ADMIN[key]) {
      result = ADMIN[key](sim, ctx);
    } else if (req.method === 'DELETE' && faultDelete) {
      result = sim.faults.remove(faultDelete[1]) ? json(200, { ok: true }) : error(404, `no fault ${faultDelete[1]}`);
    } else {
      result = error(404, `no admin route ${key}`);
    }
  } catch (e) {
    result = error(400, e.message);
  }
  send(res, result);
}

module.exports = { handle, stateSnapshot };
