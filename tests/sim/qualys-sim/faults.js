'use strict';
// Fault injection: rules that match calls by endpoint name or method + path regex and then delay them,
// answer with an error status, drop the connection, or expire every issued token.

const PHASES = ['before', 'after'];

// Checks and normalises one rule as posted to /_sim/faults.
function normaliseRule(spec, id, knownEndpoints) {
  if (!spec || typeof spec !== 'object') throw new Error('a fault rule must be an object');
  const rule = {
    id,
    method: null,
    path: null,
    endpoints: null,
    status: null,
    message: null,
    headers: {},
    latencyMs: 0,
    reset: false,
    expireTokens: false,
    phase: 'before',
    rate: null,
    count: null,
    seen: 0,
    fired: 0,
    acc: 0,
  };
  if (spec.method !== undefined) rule.method = String(spec.method).toUpperCase();
  if (spec.path !== undefined) {
    try {
      rule.path = new RegExp(String(spec.path));
    } catch (e) {
      throw new Error(`path is not a valid regular expression: ${e.message}`);
    }
    rule.pathSource = String(spec.path);
  }
  if (spec.endpoint !== undefined) {
    const list = Array.isArray(spec.endpoint) ? spec.endpoint.map(String) : [String(spec.endpoint)];
    for (const name of list) {
      if (name !== '*' && knownEndpoints && !knownEndpoints.includes(name)) {
        throw new Error(`unknown endpoint "${name}"; known: ${knownEndpoints.join(', ')}`);
      }
    }
    rule.endpoints = list;
  }
  if (spec.status !== undefined) {
    if (!Number.isInteger(spec.status) || spec.status < 400 || spec.status > 599) throw new Error('status must be an integer 400..599');
    rule.status = spec.status;
  }
  if (spec.message !== undefined) rule.message = String(spec.message);
  if (spec.headers !== undefined) rule.headers = Object.assign({}, spec.headers);
  if (spec.latencyMs !== undefined) {
    if (!(typeof spec.latencyMs === 'number' && spec.latencyMs >= 0)) throw new Error('latencyMs must be a non-negative number');
    rule.latencyMs = spec.latencyMs;
  }
  if (spec.reset !== undefined) rule.reset = Boolean(spec.reset);
  if (spec.expireTokens !== undefined) rule.expireTokens = Boolean(spec.expireTokens);
  if (spec.phase !== undefined) {
    if (!PHASES.includes(spec.phase)) throw new Error('phase must be "before" or "after"');
    rule.phase = spec.phase;
  }
  if (spec.rate !== undefined) {
    if (!(typeof spec.rate === 'number' && spec.rate > 0 && spec.rate <= 1)) throw new Error('rate must be a number in (0, 1]');
    rule.rate = spec.rate;
  }
  const count = spec.count !== undefined ? spec.count : spec.next;
  if (count !== undefined) {
    if (!Number.isInteger(count) || count < 1) throw new Error('count (or next) must be a positive integer');
    rule.count = count;
  }
  if (rule.status === null && !rule.reset && !rule.expireTokens && rule.latencyMs === 0) {
    throw new Error('a fault rule needs at least one of status, reset, expireTokens, latencyMs');
  }
  return rule;
}

class Faults {
  constructor(knownEndpoints) {
    this.knownEndpoints = knownEndpoints || null;
    this.clear();
  }

  clear() {
    this.rules = [];
    this.nextId = 1;
  }

  add(spec) {
    const rule = normaliseRule(spec, `f${this.nextId}`, this.knownEndpoints);
    this.nextId += 1;
    this.rules.push(rule);
    return describeRule(rule);
  }

  remove(id) {
    const before = this.rules.length;
    this.rules = this.rules.filter((r) => r.id !== id);
    return this.rules.length !== before;
  }

  list() {
    return this.rules.map(describeRule);
  }

  matches(rule, method, path, endpoint) {
    if (rule.method && rule.method !== method) return false;
    if (rule.path && !rule.path.test(path)) return false;
    if (rule.endpoints && !rule.endpoints.some((e) => e === endpoint || (e === '*' && endpoint !== 'auth'))) return false;
    return true;
  }

  // Decides what happens to one call. A rule with a rate fires on an exact fraction of its matching
  // calls (an accumulator, so 0.5 means every second call); a rule with a count fires on that many
  // matching calls and is then removed. The actions of every firing rule are combined.
  decide(method, path, endpoint) {
    const out = { latencyMs: 0, status: null, message: null, headers: {}, reset: false, expireTokens: false, phase: 'before', ruleIds: [] };
    for (const rule of this.rules) {
      if (!this.matches(rule, method, path, endpoint)) continue;
      rule.seen += 1;
      if (rule.rate !== null) {
        rule.acc += rule.rate;
        if (rule.acc < 1 - 1e-9) continue;
        rule.acc -= 1;
      }
      rule.fired += 1;
      if (rule.count !== null) rule.count -= 1;
      out.ruleIds.push(rule.id);
      out.latencyMs += rule.latencyMs;
      if (rule.expireTokens) out.expireTokens = true;
      if ((rule.status !== null || rule.reset) && out.status === null && !out.reset) {
        out.status = rule.status;
        out.reset = rule.reset;
        out.message = rule.message;
        out.headers = rule.headers;
        out.phase = rule.phase;
      }
    }
    this.rules = this.rules.filter((r) => r.count === null || r.count > 0);
    return out;
  }
}

function describeRule(rule) {
  return {
    id: rule.id,
    method: rule.method,
    path: rule.pathSource || null,
    endpoint: rule.endpoints,
    status: rule.status,
    message: rule.message,
    latencyMs: rule.latencyMs,
    reset: rule.reset,
    expireTokens: rule.expireTokens,
    phase: rule.phase,
    rate: rule.rate,
    remaining: rule.count,
    seen: rule.seen,
    fired: rule.fired,
  };
}

module.exports = { Faults };
