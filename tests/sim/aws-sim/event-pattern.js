'use strict';
// The EventBridge event-pattern language: validate(pattern) and matches(pattern, event).
//
// Supported: exact values (strings, numbers, booleans, null) listed in arrays, nested objects,
// prefix and suffix (optionally {"equals-ignore-case": ...}), equals-ignore-case, wildcard,
// anything-but (a value, a list, or a prefix/suffix/equals-ignore-case/wildcard), exists, numeric
// ranges, cidr (IPv4) and $or. When the event's value is an array, a leaf matches if any element
// matches, as EventBridge does. Nested patterns applied to an array of objects match if one element
// matches the whole nested pattern (EventBridge flattens arrays, which can also combine fields of
// different elements; the sim does not).

class PatternError extends Error {}

const NUMERIC_OPS = ['=', '<', '<=', '>', '>='];

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

// validate throws a PatternError naming the first problem in the pattern.
function validate(pattern) {
  if (!isPlainObject(pattern)) throw new PatternError('Filter is not an object');
  if (!Object.keys(pattern).length) throw new PatternError('Empty objects are not allowed');
  validateObject(pattern, '');
}

function validateObject(obj, path) {
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    const where = path ? path + '.' + key : key;
    if (key === '$or') {
      if (!Array.isArray(v) || v.length < 2) throw new PatternError('$or must be an array of at least two objects at ' + where);
      for (const alt of v) {
        if (!isPlainObject(alt) || !Object.keys(alt).length) throw new PatternError('$or alternatives must be non-empty objects at ' + where);
        validateObject(alt, where);
      }
    } else if (Array.isArray(v)) {
      if (!v.length) throw new PatternError('Empty arrays are not allowed at ' + where);
      for (const m of v) validateMatcher(m, where);
    } else if (isPlainObject(v)) {
      if (!Object.keys(v).length) throw new PatternError('Empty objects are not allowed at ' + where);
      validateObject(v, where);
    } else {
      throw new PatternError('"' + key + '" must be an object or an array');
    }
  }
}

function validateStringOrIgnoreCase(v, op, where) {
  if (typeof v === 'string') return;
  if (isPlainObject(v) && Object.keys(v).length === 1 && typeof v['equals-ignore-case'] === 'string') return;
  throw new PatternError(op + ' match pattern must be a string at ' + where);
}

function validateMatcher(m, where) {
  if (m === null || typeof m === 'string' || typeof m === 'boolean') return;
  if (typeof m === 'number') {
    if (!Number.isFinite(m)) throw new PatternError('Numbers must be finite at ' + where);
    return;
  }
  if (Array.isArray(m)) throw new PatternError('Match value must be String, number, true, false, or null at ' + where);
  const keys = Object.keys(m);
  if (keys.length !== 1) throw new PatternError('Only one key allowed in match expression at ' + where);
  const op = keys[0];
  const v = m[op];
  switch (op) {
    case 'prefix':
    case 'suffix':
      validateStringOrIgnoreCase(v, op, where);
      return;
    case 'equals-ignore-case':
      if (typeof v !== 'string') throw new PatternError('equals-ignore-case match pattern must be a string at ' + where);
      return;
    case 'wildcard':
      if (typeof v !== 'string') throw new PatternError('wildcard match pattern must be a string at ' + where);
      if (v.indexOf('**') >= 0) throw new PatternError('Consecutive wildcard characters are not allowed at ' + where);
      return;
    case 'exists':
      if (typeof v !== 'boolean') throw new PatternError('exists match pattern must be either true or false at ' + where);
      return;
    case 'cidr':
      if (typeof v !== 'string' || !parseCidr(v)) throw new PatternError('Malformed CIDR, one "/" required at ' + where);
      return;
    case 'numeric':
      validateNumeric(v, where);
      return;
    case 'anything-but':
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return;
      if (Array.isArray(v)) {
        if (!v.length) throw new PatternError('Empty arrays are not allowed at ' + where);
        for (const x of v) if (typeof x !== 'string' && typeof x !== 'number') throw new PatternError('Inside anything-but list, start|null|boolean is not supported at ' + where);
        return;
      }
      if (isPlainObject(v) && Object.keys(v).length === 1) {
        const k = Object.keys(v)[0];
        if (k === 'prefix' || k === 'suffix' || k === 'wildcard') {
          if (typeof v[k] === 'string' || (Array.isArray(v[k]) && v[k].every((x) => typeof x === 'string'))) return;
        }
        if (k === 'equals-ignore-case') {
          if (typeof v[k] === 'string' || (Array.isArray(v[k]) && v[k].every((x) => typeof x === 'string'))) return;
        }
      }
      throw new PatternError('Value of anything-but must be an array or single string/number value at ' + where);
    default:
      throw new PatternError('Unrecognized match type ' + op + ' at ' + where);
  }
}

function validateNumeric(v, where) {
  if (!Array.isArray(v) || !v.length || v.length % 2 !== 0 || v.length > 4) {
    throw new PatternError('Value of numeric must be an array with one or two comparisons at ' + where);
  }
  for (let i = 0; i < v.length; i += 2) {
    if (NUMERIC_OPS.indexOf(v[i]) < 0) throw new PatternError('Unrecognized numeric range operator: ' + v[i] + ' at ' + where);
    if (typeof v[i + 1] !== 'number' || !Number.isFinite(v[i + 1])) throw new PatternError('Value of ' + v[i] + ' must be numeric at ' + where);
  }
  if (v.length === 4 && (v[0] === '=' || v[2] === '=')) throw new PatternError('Bad numeric range at ' + where);
}

function parseIPv4(s) {
  const p = String(s).split('.');
  if (p.length !== 4) return null;
  let n = 0;
  for (const x of p) {
    if (!/^\d{1,3}$/.test(x) || Number(x) > 255) return null;
    n = n * 256 + Number(x);
  }
  return n;
}

function parseCidr(s) {
  const parts = String(s).split('/');
  if (parts.length !== 2) return null;
  const ip = parseIPv4(parts[0]);
  const bits = Number(parts[1]);
  if (ip === null || !Number.isInteger(bits) || bits < 0 || bits > 32) return null;
  const size = Math.pow(2, 32 - bits);
  const base = Math.floor(ip / size) * size;
  return { base, size };
}

function wildcardRegex(p) {
  const escaped = p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp('^' + escaped + '$', 's');
}

function stringTest(spec, op) {
  const ci = isPlainObject(spec);
  const needle = ci ? spec['equals-ignore-case'] : spec;
  return (s) => {
    const a = ci ? s.toLowerCase() : s;
    const b = ci ? needle.toLowerCase() : needle;
    return op === 'prefix' ? a.startsWith(b) : a.endsWith(b);
  };
}

// matchScalar tests one matcher against one present scalar value from the event.
function matchScalar(m, value) {
  if (m === null) return value === null;
  if (typeof m !== 'object') return value === m;
  const op = Object.keys(m)[0];
  const v = m[op];
  switch (op) {
    case 'prefix':
    case 'suffix':
      return typeof value === 'string' && stringTest(v, op)(value);
    case 'equals-ignore-case':
      return typeof value === 'string' && value.toLowerCase() === v.toLowerCase();
    case 'wildcard':
      return typeof value === 'string' && wildcardRegex(v).test(value);
    case 'numeric':
      if (typeof value !== 'number') return false;
      for (let i = 0; i < v.length; i += 2) {
        const n = v[i + 1];
        const ok = { '=': value === n, '<': value < n, '<=': value <= n, '>': value > n, '>=': value >= n }[v[i]];
        if (!ok) return false;
      }
      return true;
    case 'cidr': {
      const c = parseCidr(v);
      const ip = typeof value === 'string' ? parseIPv4(value) : null;
      return ip !== null && ip >= c.base && ip < c.base + c.size;
    }
    case 'anything-but':
      return anythingBut(v, value);
    default:
      return false;
  }
}

function anythingBut(v, value) {
  if (Array.isArray(v)) return v.indexOf(value) < 0;
  if (!isPlainObject(v)) return value !== v;
  const k = Object.keys(v)[0];
  const list = Array.isArray(v[k]) ? v[k] : [v[k]];
  if (typeof value !== 'string') return true;
  if (k === 'prefix') return !list.some((p) => value.startsWith(p));
  if (k === 'suffix') return !list.some((p) => value.endsWith(p));
  if (k === 'wildcard') return !list.some((p) => wildcardRegex(p).test(value));
  if (k === 'equals-ignore-case') return !list.some((p) => p.toLowerCase() === value.toLowerCase());
  return true;
}

// matchLeaf tests a leaf's matcher list against the event field (present or not).
function matchLeaf(matchers, present, value) {
  const values = Array.isArray(value) ? value : [value];
  return matchers.some((m) => {
    if (m !== null && typeof m === 'object' && 'exists' in m) {
      const exists = present && !(Array.isArray(value) && value.length === 0) && !isPlainObject(value);
      return m.exists ? exists : !exists;
    }
    if (!present) return false;
    return values.some((x) => !isPlainObject(x) && !Array.isArray(x) && matchScalar(m, x));
  });
}

function matchObject(pattern, obj) {
  const isObj = isPlainObject(obj);
  for (const key of Object.keys(pattern)) {
    const p = pattern[key];
    if (key === '$or') {
      if (!p.some((alt) => matchObject(alt, obj))) return false;
      continue;
    }
    const present = isObj && Object.prototype.hasOwnProperty.call(obj, key);
    const value = present ? obj[key] : undefined;
    if (Array.isArray(p)) {
      if (!matchLeaf(p, present, value)) return false;
    } else if (Array.isArray(value)) {
      const objs = value.filter(isPlainObject);
      if (objs.length ? !objs.some((o) => matchObject(p, o)) : !matchObject(p, undefined)) return false;
    } else if (!matchObject(p, isPlainObject(value) ? value : undefined)) {
      return false;
    }
  }
  return true;
}

// matches reports whether the event matches the pattern. The pattern may be an object or JSON text.
function matches(pattern, event) {
  const p = typeof pattern === 'string' ? JSON.parse(pattern) : pattern;
  validate(p);
  return matchObject(p, event);
}

module.exports = { matches, validate, PatternError };
