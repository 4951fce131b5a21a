// The message contracts in proto/: every schema compiles in strict mode and accepts its examples,
// the C subject table and vocabularies match the documents, every message the C codecs encode
// follows its schema, every example survives decode -> encode in C unchanged, and the C decoders
// never accept what a schema rejects.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const Ajv2020 = require('../sim/node_modules/ajv/dist/2020');
const addFormats = require('../sim/node_modules/ajv-formats');

const ROOT = path.resolve(__dirname, '..', '..');
const PROTO = path.join(ROOT, 'proto');
const BIN_DIR = process.env.QFS_BIN_DIR;
const DUMP = BIN_DIR ? path.join(path.dirname(BIN_DIR), 'tests', 'proto_dump') : null;
const SKIP_C = DUMP ? false : 'QFS_BIN_DIR is not set (run through ctest)';

// ---- schemas --------------------------------------------------------------------------------

const files = fs.readdirSync(PROTO).filter((f) => f.endsWith('.schema.json')).sort();
const schemas = new Map(); // message type ("image") -> parsed schema
for (const f of files) {
  schemas.set(f.replace(/\.schema\.json$/, ''), JSON.parse(fs.readFileSync(path.join(PROTO, f), 'utf8')));
}
const messageTypes = [...schemas.keys()].filter((t) => t !== 'common');

function newAjv() {
  const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
  addFormats(ajv);
  for (const s of schemas.values()) ajv.addSchema(s);
  return ajv;
}
const ajv = newAjv();
const validators = new Map();
function validator(type) {
  if (!validators.has(type)) validators.set(type, ajv.getSchema(schemas.get(type).$id));
  return validators.get(type);
}
function errorsOf(type, value) {
  const v = validator(type);
  return v(value) ? null : ajv.errorsText(v.errors);
}

// The message type of a message: its "schema" field names it; EventBridge events have none.
function typeOf(msg) {
  if (msg && typeof msg === 'object' && !Array.isArray(msg) && typeof msg.schema === 'string') {
    const m = /^qfs\.([a-z_]+)\.v1$/.exec(msg.schema);
    return m && schemas.has(m[1]) ? m[1] : null;
  }
  return 'event';
}

function runDump(args, input) {
  const r = spawnSync(DUMP, args, { encoding: 'utf8', maxBuffer: 1 << 30, input });
  assert.equal(r.error, undefined, `cannot run ${DUMP}: ${r.error}`);
  assert.equal(r.status, 0, `proto_dump ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l));
}

// Runs each value through the C decoder and encoder; returns [{ok, json | error}], one per value.
function roundtrip(values) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qfs-proto-'));
  try {
    const file = path.join(dir, 'messages.jsonl');
    fs.writeFileSync(file, values.map((v) => JSON.stringify(v)).join('\n') + '\n');
    const out = runDump(['--roundtrip', file]);
    assert.equal(out.length, values.length, 'one answer per message');
    return out;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('every schema compiles in strict mode and names its file', () => {
  for (const [type, s] of schemas) {
    assert.equal(s.$schema, 'https://json-schema.org/draft/2020-12/schema', type);
    assert.equal(s.$id, `https://qfs.invalid/proto/${type}.schema.json`, type);
    assert.equal(typeof validator(type), 'function', `${type} compiles`);
  }
  // A fresh instance compiles each schema on its own too (no hidden order dependence).
  const fresh = newAjv();
  for (const s of schemas.values()) assert.ok(fresh.getSchema(s.$id));
});

test('every message schema has valid examples', () => {
  for (const type of messageTypes) {
    const examples = schemas.get(type).examples;
    assert.ok(Array.isArray(examples) && examples.length >= 1, `${type} has examples`);
    examples.forEach((ex, i) => assert.equal(errorsOf(type, ex), null, `${type} example ${i}`));
  }
});

test('each schema const matches its file; our own messages are closed', () => {
  for (const type of messageTypes) {
    const s = schemas.get(type);
    if (type === 'event') {
      // EventBridge's format: no schema field, open to unknown fields; the header names it.
      assert.equal(s.properties.schema, undefined);
      assert.notEqual(s.additionalProperties, false);
      assert.match(s.title, /^qfs\.event\.v1:/);
      continue;
    }
    assert.deepEqual(s.properties.schema, { const: `qfs.${type}.v1` }, type);
    assert.ok(s.required.includes('schema'), `${type} requires schema`);
    assert.equal(s.additionalProperties, false, `${type} is closed`);
    assert.deepEqual([...s.required].sort(), Object.keys(s.properties).sort(),
      `${type}: every field is required (nullable ones are null, not absent)`);
    for (const ex of s.examples) assert.equal(ex.schema, `qfs.${type}.v1`);
  }
});

test('the C subject table, schema names and vocabularies match proto/', { skip: SKIP_C }, () => {
  const table = runDump(['--table']);
  const doc = fs.readFileSync(path.join(PROTO, 'subjects.md'), 'utf8');
  const section = doc.split(/^## /m).find((s) => s.startsWith('Subjects'));
  assert.ok(section, 'subjects.md has a "## Subjects" section');
  const rows = section.split('\n').filter((l) => l.startsWith('|'));

  const subjects = table.filter((r) => r.subject);
  assert.equal(subjects.length, 10);
  for (const s of subjects) {
    const row = rows.find((l) => l.startsWith(`| \`${s.subject}\``));
    assert.ok(row, `subjects.md lists ${s.subject}`);
    assert.ok(row.includes(`\`${s.filter}\``), `subjects.md gives the filter of ${s.subject}`);
    if (s.schema) assert.ok(row.includes(`\`${s.schema}\``), `subjects.md names ${s.schema} for ${s.subject}`);
    else assert.ok(/\bnone\b/.test(row), `${s.subject} has no schema`);
  }
  // And the other way round: every subject pattern in subjects.md is in the C table.
  const documented = rows.map((l) => /^\| `(qfs\.[^`]+)`/.exec(l)).filter(Boolean).map((m) => m[1]);
  assert.deepEqual(documented.sort(), subjects.map((s) => s.subject).sort());

  const names = table.filter((r) => r.schema_name).map((r) => r.schema_name).sort();
  assert.deepEqual(names, messageTypes.map((t) => `qfs.${t}.v1`).sort(),
    'one C schema name per schema file');

  const vocab = Object.fromEntries(table.filter((r) => r.vocab).map((r) => [r.vocab, r.values]));
  const common = schemas.get('common').$defs;
  const notification = schemas.get('notification').properties;
  const same = (a, b, what) => assert.deepEqual([...a].sort(), [...b].sort(), what);
  same(vocab.skip_reason, schemas.get('skip').properties.reason.enum, 'skip reasons');
  same(vocab.scan_failure_reason, common.scan_failure_reason.enum, 'scan failure reasons');
  same(vocab.severity, common.severity_name.enum, 'severities');
  same(vocab.status, common.status_name.enum, 'qfs_status names');
  same(vocab.notify_decision, notification.decision.enum, 'notification decisions');
  same(vocab.notify_reason, notification.reason.enum, 'notification reasons');
  same(vocab.notify_source, notification.source.enum, 'notification sources');
  for (const r of ['not_ecr', 'invalid_image', 'api_call_failed', 'no_tasks_started',
    'unsupported_event', 'cached', 'in_flight', 'task_definition_not_found', 'access_denied',
    'digest_unresolved']) {
    assert.ok(vocab.skip_reason.includes(r), `skip reason ${r}`);
  }
  for (const r of ['timeout', 'scan_failed', 'untagged_digest', 'registry_failed', 'qualys_denied']) {
    assert.ok(vocab.scan_failure_reason.includes(r), `failure reason ${r}`);
  }
});

test('every message the C codecs encode follows its schema', { skip: SKIP_C }, () => {
  const lines = runDump([]);
  for (const { type, case: what, json } of lines) {
    assert.equal(typeOf(json), type, `${type}/${what}: schema field`);
    assert.equal(errorsOf(type, json), null, `${type}/${what}`);
  }
  const seen = new Set(lines.map((l) => l.type));
  for (const type of messageTypes) assert.ok(seen.has(type), `C encodes a ${type}`);

  // The edge cases are there, and came out as intended.
  const of = (type, what) => {
    const l = lines.find((x) => x.type === type && x.case === what);
    assert.ok(l, `${type}/${what} was printed`);
    return l.json;
  };
  assert.equal(of('image', 'null digest, unresolved').digest, null);
  assert.equal(of('image', 'digest only, China partition').tag, null);
  const max = of('scan_result', 'maximal findings and deploys');
  assert.equal(max.findings.length, 50);
  assert.equal(max.deploys.length, 100);
  assert.ok(max.findings.every((f) => f.cves.length === 64));
  for (let i = 1; i < max.findings.length; i++) {
    const [a, b] = [max.findings[i - 1], max.findings[i]];
    assert.ok(a.severity > b.severity || (a.severity === b.severity && a.qid < b.qid), 'most severe first');
  }
  const b64 = of('dlq', 'non-UTF-8 payload as base64');
  assert.equal(b64.payload_encoding, 'base64');
  assert.deepEqual(Buffer.from(b64.payload, 'base64'),
    Buffer.from([0xff, 0xfe, 0x7b, 0, 0x22, 0, 0x69, 0, 0x64, 0, 0x22, 0, 0x3a, 0]));
  assert.equal(b64.payload_size, 14);
  assert.equal(of('dlq', 'NUL byte as base64').payload, Buffer.from('a\0b').toString('base64'));
  const cut = of('dlq', 'oversize payload cut');
  assert.equal(cut.payload_encoding, 'utf8');
  assert.equal(cut.payload_truncated, true);
  assert.equal(Buffer.byteLength(cut.payload), 512 * 1024);
  assert.equal(cut.payload_size, 512 * 1024 + 1000);
  const ctl = of('dlq', 'control characters fall back to base64');
  assert.equal(ctl.payload_encoding, 'base64');
  assert.equal(Buffer.from(ctl.payload, 'base64').length, 512 * 1024);
  assert.equal(of('skip', 'hostile image reference').image,
    '111122223333.dkr.ecr.eu-west-1.amazonaws.com/Web App:"1"\n\x01 ünïcode');
});

test('every schema example round-trips through the C decoders and encoders', { skip: SKIP_C }, () => {
  const examples = messageTypes.flatMap((type) => schemas.get(type).examples.map((ex, i) => ({ type, i, ex })));
  const out = roundtrip(examples.map((e) => e.ex));
  examples.forEach(({ type, i, ex }, k) => {
    assert.ok(out[k].ok, `${type} example ${i} decodes in C: ${out[k].error}`);
    assert.deepEqual(out[k].json, ex, `${type} example ${i} encodes back to the same JSON`);
  });
  // What C encodes also decodes in C to the same JSON.
  const encoded = runDump([]).filter((l) => l.type !== 'event').map((l) => l.json);
  roundtrip(encoded).forEach((r, k) => {
    assert.ok(r.ok, r.error);
    assert.deepEqual(r.json, encoded[k]);
  });
});

// ---- C against the schemas on broken input ---------------------------------------------------

const REPLACEMENTS = [null, true, 0, 7, -1, 1.5, 1e15, '', 'x', 'A'.repeat(2100), [], {}];

// Every variant of value with one node replaced, removed or extended: [{where, value}].
function mutants(root) {
  const out = [];
  const clone = () => structuredClone(root);
  const at = (obj, p) => p.reduce((o, k) => o[k], obj);
  const walk = (node, p) => {
    if (p.length > 0) {
      const put = (v, how) => {
        const c = clone();
        at(c, p.slice(0, -1))[p[p.length - 1]] = v;
        out.push({ where: `${p.join('.')} ${how}`, value: c });
      };
      for (const r of REPLACEMENTS) put(r, `= ${JSON.stringify(r).slice(0, 20)}`);
      if (typeof node === 'string') {
        put(node.toUpperCase(), 'upper case');
        put(node + ' ', '+ space');
        put(node + '>', '+ >');
        put(node.slice(0, -1), 'shortened');
        put('\u00e9' + node, 'non-ASCII');
      }
      if (Array.isArray(node) && node.length > 0) {
        put([...node, node[0]], 'duplicate first item');
        put(Array(101).fill(node[0]), '101 items');
      }
    }
    if (node && typeof node === 'object' && !Array.isArray(node)) {
      for (const k of Object.keys(node)) {
        const c = clone();
        delete at(c, p)[k];
        out.push({ where: `${[...p, k].join('.')} removed`, value: c, removed: k, top: p.length === 0 });
        walk(node[k], [...p, k]);
      }
      const c = clone();
      at(c, p).zz_unknown = 1;
      out.push({ where: `${p.join('.') || 'top'} + unknown field`, value: c, unknown: true, top: p.length === 0 });
    } else if (Array.isArray(node)) {
      node.forEach((v, i) => walk(v, [...p, i]));
    }
  };
  walk(root, []);
  return out;
}

test('the C decoders never accept what a schema rejects', { skip: SKIP_C }, () => {
  const cases = [];
  for (const type of messageTypes) {
    for (const ex of schemas.get(type).examples) {
      for (const m of mutants(ex)) cases.push({ type, ...m });
    }
  }
  const out = roundtrip(cases.map((c) => c.value));
  let rejectedByBoth = 0;
  cases.forEach((c, k) => {
    const schemaErr = errorsOf(c.type, c.value);
    const cOk = out[k].ok && typeOf(c.value) === c.type;
    if (cOk) {
      assert.equal(schemaErr, null, `${c.type} ${c.where}: C accepts what the schema rejects`);
      assert.deepEqual(out[k].json, c.value, `${c.type} ${c.where}: C changed an accepted message`);
    } else if (schemaErr) {
      rejectedByBoth++;
    }
    if (c.top && c.removed && c.type !== 'event') {
      assert.ok(schemaErr, `${c.type} without ${c.removed} is invalid`);
      assert.ok(!out[k].ok, `C rejects ${c.type} without ${c.removed}`);
      if (c.removed !== 'schema') {
        assert.match(out[k].error, new RegExp(`\\b${c.removed}\\b`), `the C error names ${c.removed}`);
      }
    }
    if (c.top && c.unknown && c.type !== 'event') {
      assert.ok(schemaErr && !out[k].ok, `${c.type} with an unknown field is rejected by both`);
    }
  });
  assert.ok(rejectedByBoth > 1000, `many mutants are rejected by both (${rejectedByBoth})`);
});

test('hand-picked bad values are rejected by the schema and by C, naming the field', { skip: SKIP_C }, () => {
  const ex = (type, i = 0) => structuredClone(schemas.get(type).examples[i]);
  const with_ = (type, patch, i = 0) => Object.assign(ex(type, i), patch);
  const deploy0 = (patch) => {
    const m = ex('scan_request');
    Object.assign(m.deploys[0], patch);
    return m;
  };
  const bad = [
    ['image', with_('image', { account: '11112222333' }), 'account'],
    ['image', with_('image', { region: 'EU-WEST-1' }), 'region'],
    ['image', with_('image', { region: 'eu-west-1>' }), 'region'],
    ['image', with_('image', { digest: 'sha256:ABC' }), 'digest'],
    ['image', with_('image', { digest: 'sha256:' + 'A'.repeat(64) }), 'digest'],
    ['image', with_('image', { event_name: 'DeleteService' }), 'event_name'],
    ['image', with_('image', { containers: [] }), 'containers'],
    ['image', with_('image', { containers: ['app', 'app'] }), 'containers'],
    ['image', with_('image', { event_time: '2026-02-30T10:00:00Z' }), 'event_time'],
    ['image', with_('image', { event_time: '2026-05-01 10:00:00' }), 'event_time'],
    ['image', with_('image', { digest_unresolved: null }, 1), 'digest_unresolved'],
    ['image', with_('image', { cache_fail_open: 'false' }), 'cache_fail_open'],
    ['skip', with_('skip', { reason: 'bored' }), 'reason'],
    ['skip', with_('skip', { summary: ex('skip', 1).summary }), 'summary'],
    ['scan_request', deploy0({ event_account: '1111222233334' }), 'event_account'],
    ['scan_request', with_('scan_request', { deploys: [] }), 'deploys'],
    ['scan_request', with_('scan_request', { deploys: Array(101).fill(ex('scan_request').deploys[0]) }), 'deploys'],
    ['scan_request', with_('scan_request', { generation: 0 }), 'generation'],
    ['scan_ready', with_('scan_ready', { registry_uuid: 'not-a-uuid' }), 'registry_uuid'],
    ['scan_result', with_('scan_result', { findings: Array(51).fill(ex('scan_result').findings[0]) }), 'findings'],
    ['scan_result', with_('scan_result', { qualys_image_sha: 'sha256:' + '0'.repeat(64) }), 'qualys_image_sha'],
    ['scan_failure', with_('scan_failure', { reason: 'gave_up' }), 'reason'],
    ['notification', with_('notification', { sns_message_id: null }), 'sns_message_id'],
    ['notification', with_('notification', { decision: 'maybe' }), 'decision'],
    ['notification', with_('notification', { subject: 'x'.repeat(100) }), 'subject'],
    ['dlq', with_('dlq', { status: 'ok' }), 'status'],
    ['dlq', with_('dlq', { payload_encoding: 'base64', payload: 'not base64!' }), 'payload'],
    ['dlq', with_('dlq', { headers: { 'Bad:Name': 'x' } }), 'headers'],
    ['dlq', with_('dlq', { headers: { Name: 'a\r\nb' } }), 'headers'],
    ['event', with_('event', { account: '11112222333' }), 'account'],
    ['event', with_('event', { detail: 'x' }), 'detail'],
    ['event', with_('event', { id: undefined }), 'id'],
  ];
  const out = roundtrip(bad.map(([, v]) => v));
  bad.forEach(([type, value, field], k) => {
    assert.ok(errorsOf(type, JSON.parse(JSON.stringify(value))), `the ${type} schema rejects bad ${field}`);
    assert.ok(!out[k].ok, `C rejects ${type} with bad ${field}`);
    assert.equal(out[k].status, 'protocol');
    assert.match(out[k].error, new RegExp(`\\b${field}\\b`), `the C error names ${field}: ${out[k].error}`);
  });
  // C checks the schema cannot express: totals, finding order, registry/account agreement.
  const crossField = [
    [with_('scan_result', { total: 12 }), 'total'],
    [with_('scan_result', { patchable: 14 }), 'patchable'],
    [(() => { const m = ex('scan_result'); m.findings.reverse(); return m; })(), 'findings[1]'],
    [with_('image', { account: '999999999999' }), 'registry'],
    [with_('dlq', { payload_size: 1 }), 'payload_size'],
  ];
  roundtrip(crossField.map(([v]) => v)).forEach((r, k) => {
    assert.ok(!r.ok, `C rejects ${crossField[k][1]}`);
    assert.ok(r.error.startsWith(crossField[k][1]), r.error);
  });
});
