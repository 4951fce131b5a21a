'use strict';
// The request pipeline: admin routing, fault injection, bearer-token checks, rate limiting and
// dispatch to the Qualys route handlers, with every call written to the call log.

const { ApiError, error, send, readBody } = require('./respond');
const routes = require('./routes');
const admin = require('./admin');

const CSAPI_PREFIX = '/csapi/';

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function queryObject(params) {
  const out = {};
  for (const [k, v] of params) {
    if (out[k] === undefined) out[k] = v;
    else out[k] = [].concat(out[k], v);
  }
  return out;
}

// The answer a fault rule gives instead of (or after) the real handler.
function faultResult(sim, decision, path, now) {
  const status = decision.status;
  const message = decision.message || (status === 429 ? 'API rate limit exceeded (injected)' : `Injected fault: HTTP ${status}`);
  let headers = {};
  if (status === 429) headers = sim.limiter.stormHeaders(path, now);
  else if (path.startsWith(CSAPI_PREFIX)) headers = sim.limiter.peek(path, now);
  return error(status, message, Object.assign(headers, decision.headers));
}

function withHeaders(result, headers) {
  result.headers = Object.assign({}, headers, result.headers);
  return result;
}

// Runs auth, the rate limiter and the handler for one call; returns a result object.
function dispatch(sim, ctx, found) {
  const { path, req, now } = ctx;
  if (found && found.route && found.route.public) return found.route.handler(ctx);
  if (!path.startsWith(CSAPI_PREFIX)) {
    if (found && found.methodNotAllowed) return error(405, `Request method '${req.method}' not supported`);
    return error(404, `No endpoint ${req.method} ${path}`);
  }

  const auth = String(req.headers.authorization || '');
  const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
  if (!m) return withHeaders(error(401, 'Full authentication is required: send Authorization: Bearer <JWT>'), sim.limiter.peek(path, now));
  const verdict = sim.tokens.verify(m[1], now);
  if (!verdict.ok) return withHeaders(error(401, verdict.message), sim.limiter.peek(path, now));
  const modules = Array.isArray(verdict.claims.modulesAllowed) ? verdict.claims.modulesAllowed : [];
  if (!modules.includes('CS')) return withHeaders(error(403, 'Request Forbidden'), sim.limiter.peek(path, now));

  const rl = sim.limiter.take(path, now);
  if (!rl.allowed) return error(429, 'API rate limit exceeded, please retry later', rl.headers);
  if (!found) return error(404, `No endpoint ${req.method} ${path}`, rl.headers);
  if (found.methodNotAllowed) return error(405, `Request method '${req.method}' not supported`, rl.headers);

  ctx.params = found.params;
  let result;
  try {
    result = found.route.handler(ctx);
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    result = error(e.status, e.message, e.headers);
  }
  return withHeaders(result, rl.headers);
}

// Handles one HTTP request end to end.
async function handle(sim, req, res) {
  const started = Date.now();
  let url;
  try {
    url = new URL(req.url, 'http://qualys-sim.invalid');
  } catch (e) {
    send(res, error(400, 'Malformed request URL'));
    return;
  }
  const path = url.pathname;
  let body;
  try {
    body = await readBody(req);
  } catch (e) {
    send(res, error(e.status || 400, e.message));
    return;
  }
  if (path === '/_sim' || path.startsWith('/_sim/')) {
    await admin.handle(sim, req, res, url, body);
    return;
  }

  const found = routes.match(req.method, path);
  const endpoint = found ? (found.route ? found.route.name : found.name) : 'unknown';
  const entry = {
    time: started,
    method: req.method,
    path,
    query: queryObject(url.searchParams),
    rawQuery: url.search.replace(/^\?/, ''),
    endpoint,
  };
  const finish = (status, faultIds) => {
    entry.status = status;
    entry.durationMs = Date.now() - started;
    if (faultIds && faultIds.length) entry.faults = faultIds;
    sim.calls.record(entry);
    sim.log(`${req.method} ${req.url} -> ${status} ${entry.durationMs}ms${entry.faults ? ` faults=${entry.faults.join(',')}` : ''}`);
  };

  const decision = sim.faults.decide(req.method, path, endpoint);
  if (decision.latencyMs > 0) await delay(decision.latencyMs);
  if (decision.expireTokens) sim.tokens.expireAll({}, Date.now());
  if (decision.phase === 'before' && decision.reset) {
    req.socket.destroy();
    finish('reset', decision.ruleIds);
    return;
  }
  if (decision.phase === 'before' && decision.status) {
    const r = faultResult(sim, decision, path, Date.now());
    send(res, r);
    finish(r.status, decision.ruleIds);
    return;
  }

  const now = Date.now();
  sim.model.advance(now);
  const ctx = { sim, req, path, query: url.searchParams, body, now, baseUrl: `http://${req.headers.host || 'localhost'}` };
  let result;
  try {
    result = dispatch(sim, ctx, found);
  } catch (e) {
    sim.log(`internal error on ${req.method} ${req.url}: ${e.stack || e}`);
    result = error(500, 'Internal server error');
  }

  // Faults in the "after" phase let the call take effect first: the client never sees the answer.
  if (decision.phase === 'after' && decision.reset) {
    req.socket.destroy();
    finish('reset', decision.ruleIds);
    return;
  }
  if (decision.phase === 'after' && decision.status) result = faultResult(sim, decision, path, Date.now());
  send(res, result);
  finish(result.status, decision.ruleIds);
}

module.exports = { handle };
