'use strict';
// A small QQL (Qualys Query Language) parser and evaluator covering the subset CS clients use.
//
// Grammar handled here:
//   query := clause ( ('and' | 'or') clause )*          ('and' binds tighter than 'or')
//   clause := '(' query ')' | field ':' value
//   value := '[' range ']' | "double quoted" | 'single quoted' | bare-word
//   range := bound ('..' | '...') bound, a bound being empty, now, now-300s, now+2d, epoch ms or ISO date
// Field names are checked against the table the caller passes in; an unknown one is a QqlError
// that the routes turn into a 400, as is any syntax error. The filter arrives URL-decoded once:
// a doubly encoded filter (%253A ...) therefore reaches the parser as "field%3A..." and fails.

class QqlError extends Error {}

const UNIT_MS = {
  s: 1000,
  m: 60 * 1000,
  h: 60 * 60 * 1000,
  d: 24 * 60 * 60 * 1000,
  w: 7 * 24 * 60 * 60 * 1000,
  M: 30 * 24 * 60 * 60 * 1000,
  y: 365 * 24 * 60 * 60 * 1000,
};

function isSpace(ch) {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r';
}

// Splits the query into clauses and operators, keeping each clause's field and raw value.
class Parser {
  constructor(text, fields) {
    this.s = text;
    this.i = 0;
    this.fields = fields;
  }

  fail(msg) {
    throw new QqlError(`Invalid filter query at position ${this.i}: ${msg}`);
  }

  skipSpace() {
    while (this.i < this.s.length && isSpace(this.s[this.i])) this.i += 1;
  }

  peekWord() {
    const m = /^[A-Za-z]+/.exec(this.s.slice(this.i));
    return m ? m[0] : '';
  }

  parseQuery() {
    let node = this.parseAnd();
    for (;;) {
      this.skipSpace();
      const w = this.peekWord();
      if (w.toLowerCase() !== 'or' || !this.isOperatorAt(w.length)) break;
      this.i += w.length;
      node = { op: 'or', left: node, right: this.parseAnd() };
    }
    return node;
  }

  parseAnd() {
    let node = this.parseClause();
    for (;;) {
      this.skipSpace();
      const w = this.peekWord();
      if (w.toLowerCase() !== 'and' || !this.isOperatorAt(w.length)) break;
      this.i += w.length;
      node = { op: 'and', left: node, right: this.parseClause() };
    }
    return node;
  }

  // An operator word must be followed by whitespace or '(' so that a field named "android" is not "and".
  isOperatorAt(len) {
    const next = this.s[this.i + len];
    return next === undefined ? false : isSpace(next) || next === '(';
  }

  parseClause() {
    this.skipSpace();
    if (this.i >= this.s.length) this.fail('expected a field:value clause');
    if (this.s[this.i] === '(') {
      this.i += 1;
      const inner = this.parseQuery();
      this.skipSpace();
      if (this.s[this.i] !== ')') this.fail("expected ')'");
      this.i += 1;
      return inner;
    }
    const m = /^[A-Za-z][A-Za-z0-9_.]*/.exec(this.s.slice(this.i));
    if (!m) this.fail('expected a field name');
    const name = m[0];
    this.i += name.length;
    if (this.s[this.i] !== ':') this.fail(`expected ':' after "${name}"`);
    this.i += 1;
    const spec = this.fields[name];
    if (!spec) throw new QqlError(`Invalid filter query: unknown token "${name}"`);
    this.skipSpace();
    const value = this.parseValue();
    return { op: 'match', name, spec, value: compileValue(name, spec, value) };
  }

  parseValue() {
    const ch = this.s[this.i];
    if (ch === undefined) this.fail('expected a value');
    if (ch === '[') {
      const end = this.s.indexOf(']', this.i);
      if (end < 0) this.fail("unterminated range, expected ']'");
      const raw = this.s.slice(this.i, end + 1);
      this.i = end + 1;
      return { kind: 'range', raw };
    }
    if (ch === '"' || ch === "'") {
      let out = '';
      this.i += 1;
      while (this.i < this.s.length && this.s[this.i] !== ch) {
        if (this.s[this.i] === '\\' && this.i + 1 < this.s.length) this.i += 1;
        out += this.s[this.i];
        this.i += 1;
      }
      if (this.s[this.i] !== ch) this.fail('unterminated quoted value');
      this.i += 1;
      const trimmed = out.trim();
      if (trimmed.startsWith('[') && trimmed.endsWith(']')) return { kind: 'range', raw: trimmed };
      return { kind: 'text', text: out };
    }
    let start = this.i;
    while (this.i < this.s.length && !isSpace(this.s[this.i]) && this.s[this.i] !== ')') this.i += 1;
    if (this.i === start) this.fail('expected a value');
    return { kind: 'text', text: this.s.slice(start, this.i) };
  }
}

// Parses one bound of a range: now, now-300s, now+1d, epoch milliseconds, or an ISO-8601 date.
function parseBound(raw, type) {
  const s = raw.trim();
  if (s === '' || s === '*') return null;
  if (type === 'number') {
    if (!/^-?\d+(\.\d+)?$/.test(s)) throw new QqlError(`Invalid filter query: "${s}" is not a number`);
    return { abs: Number(s) };
  }
  const rel = /^now(?:\s*([+-])\s*(\d+)\s*([smhdwMy]))?$/.exec(s);
  if (rel) {
    const offset = rel[1] ? (rel[1] === '-' ? -1 : 1) * Number(rel[2]) * UNIT_MS[rel[3]] : 0;
    return { rel: offset };
  }
  if (/^\d{10,}$/.test(s)) return { abs: Number(s) };
  if (/^\d{4}-\d{2}-\d{2}/.test(s)) {
    const t = Date.parse(s);
    if (!Number.isNaN(t)) return { abs: t };
  }
  throw new QqlError(`Invalid filter query: cannot read "${s}" as a date`);
}

function compileRange(raw, type) {
  const inner = raw.slice(1, -1);
  const m = /^(.*?)\s*\.{2,3}\s*(.*)$/.exec(inner.trim());
  if (!m) throw new QqlError(`Invalid filter query: range "${raw}" needs ".." or "..."`);
  const from = parseBound(m[1], type);
  const to = parseBound(m[2], type);
  if (!from && !to) throw new QqlError(`Invalid filter query: range "${raw}" has no bounds`);
  return { kind: 'range', from, to };
}

// Turns the parsed value into a matcher for the field's type.
function compileValue(name, spec, value) {
  const type = spec.type;
  if (value.kind === 'range') {
    if (type !== 'time' && type !== 'number') {
      throw new QqlError(`Invalid filter query: token "${name}" does not accept a range`);
    }
    return compileRange(value.raw, type);
  }
  if (type === 'time' || type === 'number') {
    if (!/^-?\d+(\.\d+)?$/.test(value.text)) {
      throw new QqlError(`Invalid filter query: "${value.text}" is not a valid value for ${name}`);
    }
    return { kind: 'eq-number', n: Number(value.text) };
  }
  if (type === 'bool') {
    const t = value.text.toLowerCase();
    if (t !== 'true' && t !== 'false') throw new QqlError(`Invalid filter query: ${name} takes true or false`);
    return { kind: 'eq-bool', b: t === 'true' };
  }
  return { kind: 'eq-text', text: value.text, ci: type === 'ci' };
}

function resolveBound(bound, now) {
  if (!bound) return null;
  return bound.abs !== undefined ? bound.abs : now + bound.rel;
}

function matchOne(v, value, now) {
  if (v === null || v === undefined) return false;
  switch (value.kind) {
    case 'range': {
      const n = Number(v);
      if (Number.isNaN(n)) return false;
      const lo = resolveBound(value.from, now);
      const hi = resolveBound(value.to, now);
      return (lo === null || n >= lo) && (hi === null || n <= hi);
    }
    case 'eq-number':
      return Number(v) === value.n;
    case 'eq-bool':
      return Boolean(v) === value.b;
    default:
      return value.ci ? String(v).toLowerCase() === value.text.toLowerCase() : String(v) === value.text;
  }
}

function evaluate(node, rec, now) {
  if (node.op === 'and') return evaluate(node.left, rec, now) && evaluate(node.right, rec, now);
  if (node.op === 'or') return evaluate(node.left, rec, now) || evaluate(node.right, rec, now);
  const got = node.spec.get(rec);
  const values = Array.isArray(got) ? got : [got];
  return values.some((v) => matchOne(v, node.value, now));
}

// Compiles a filter into a predicate (record, nowMs) -> bool. An empty or absent filter matches all.
// fields maps token name -> { type: 'text'|'ci'|'time'|'number'|'bool', get(record) -> value or array }.
function compile(text, fields) {
  if (text === undefined || text === null || String(text).trim() === '') return () => true;
  const p = new Parser(String(text), fields);
  const tree = p.parseQuery();
  p.skipSpace();
  if (p.i < p.s.length) p.fail(`unexpected "${p.s.slice(p.i, p.i + 20)}"`);
  return (rec, now) => evaluate(tree, rec, now === undefined ? Date.now() : now);
}

// Parses sort=field:asc|desc against a table of sortable fields; returns { field, desc, get }.
function compileSort(text, sortable, fallback) {
  const raw = text === undefined || text === null || String(text).trim() === '' ? fallback : String(text).trim();
  const m = /^([A-Za-z][A-Za-z0-9_.]*)(?::(asc|desc))?$/i.exec(raw);
  if (!m) throw new QqlError(`Invalid sort "${raw}": expected field:asc or field:desc`);
  const get = sortable[m[1]];
  if (!get) throw new QqlError(`Invalid sort "${raw}": "${m[1]}" is not a sortable token`);
  return { field: m[1], desc: (m[2] || 'asc').toLowerCase() === 'desc', get };
}

// Sorts records in place; null values go last whatever the direction, ties keep a stable key order.
function applySort(records, sort, tiebreak) {
  const dir = sort.desc ? -1 : 1;
  records.sort((a, b) => {
    const va = sort.get(a);
    const vb = sort.get(b);
    const na = va === null || va === undefined;
    const nb = vb === null || vb === undefined;
    if (na !== nb) return na ? 1 : -1;
    if (!na) {
      const x = typeof va === 'number' || /^\d+$/.test(String(va)) ? Number(va) : String(va);
      const y = typeof vb === 'number' || /^\d+$/.test(String(vb)) ? Number(vb) : String(vb);
      if (x < y) return -dir;
      if (x > y) return dir;
    }
    return tiebreak ? tiebreak(a, b) : 0;
  });
  return records;
}

module.exports = { compile, compileSort, applySort, QqlError };
