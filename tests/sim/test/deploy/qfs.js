'use strict';
// What the deploy tests compare the deployment against: the services' own --help (the variables
// each reads, and which it requires), ARCHITECTURE.md §7's fixed names, and the Qualys platform
// table as the C code, the reference and the deploy script each hold it.

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const SRC = process.env.QFS_SOURCE_DIR || path.resolve(__dirname, '..', '..', '..', '..');
const BIN_DIR = process.env.QFS_BIN_DIR || path.join(SRC, 'build', 'bin');
const SERVICES = ['ingest', 'parser', 'cache', 'registry', 'scanner-poller', 'notifier'];

// ARCHITECTURE.md §7: the fixed names and the services that read them ('all' for every service).
// A service may set a name listed for it here even before its binary exists or documents it.
const ARCHITECTURE_VARS = {
  QFS_NATS_URL: 'all',
  QFS_LOG_LEVEL: 'all',
  QFS_DRAIN_TIMEOUT_MS: 'all',
  QFS_STREAM_MAX_AGE: 'all',
  QFS_SQS_QUEUE_URL: ['ingest'],
  QFS_SNS_TOPIC_ARN: ['notifier'],
  QFS_CACHE_BACKEND: ['cache', 'parser', 'registry', 'scanner-poller'],
  QFS_REDIS_URL: ['cache', 'parser', 'registry', 'scanner-poller'],
  QFS_CACHE_TABLE: ['cache', 'parser', 'registry', 'scanner-poller'],
  QFS_CACHE_TTL_SECONDS: ['cache', 'parser', 'registry', 'scanner-poller'],
  QFS_ECS_DESCRIBE_ROLE_NAME: ['parser', 'registry'],
  QFS_ECR_ROLE_NAME: ['parser', 'registry'],
  QFS_QUALYS_SECRET_ARN: ['registry', 'scanner-poller'],
  QFS_MAX_POLL_ATTEMPTS: ['scanner-poller'],
  QFS_POLL_INTERVAL_SECONDS: ['scanner-poller'],
  QFS_NOTIFY_MIN_SEVERITY: ['notifier'],
  QFS_NOTIFY_NEW_ONLY: ['notifier'],
};
// services/DESIGN.md adds these uses, which the templates and compose file rely on before the
// services' binaries exist to say so in --help.
const DESIGN_VARS = {
  QFS_CACHE_BACKEND: ['notifier'], // "the four services after the parser ... share the store"
  QFS_REDIS_URL: ['notifier'],
  QFS_CACHE_TABLE: ['notifier'],
  QFS_ECS_DESCRIBE_ROLE_NAME: ['scanner-poller'], // "the image account's QFS_ECS_DESCRIBE_ROLE_NAME role as the parser does"
  QFS_HUB_ACCOUNT_ID: ['parser', 'scanner-poller'], // the parser's rule for the hub's own account, which the poller shares
};
// §7: AWS's standard names, read by the AWS client of every service, and Qualys's.
const AWS_VARS = new Set(['AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'AWS_ENDPOINT_URL']);
const QUALYS_VARS = new Set(['QUALYS_API_TOKEN', 'QUALYS_USERNAME', 'QUALYS_PASSWORD', 'QUALYS_POD', 'QUALYS_GATEWAY_URL']);
const QUALYS_SERVICES = new Set(['registry', 'scanner-poller']);

function binary(service) {
  const f = path.join(BIN_DIR, 'qfs-' + service);
  return fs.existsSync(f) ? f : null;
}

// helpVars runs `qfs-<service> --help` and returns {shared, own}: Maps of variable -> {required}
// for the shared and the service's own sections, or null when the binary is not built.
const helpCache = new Map();
function helpVars(service) {
  if (helpCache.has(service)) return helpCache.get(service);
  const bin = binary(service);
  let out = null;
  if (bin) {
    const r = spawnSync(bin, ['--help'], { encoding: 'utf8', timeout: 10000 });
    if (r.status !== 0) throw new Error('qfs-' + service + ' --help exited ' + r.status + ': ' + r.stderr);
    out = { shared: new Map(), own: new Map() };
    let section = null;
    let last = null;
    for (const line of r.stdout.split('\n')) {
      if (/^Environment \(shared/.test(line)) section = out.shared;
      else if (/^Environment \(qfs-/.test(line)) section = out.own;
      else if (section && /^ {2}[A-Z][A-Z0-9_]+\s/.test(line)) {
        last = line.trim().split(/\s+/)[0];
        section.set(last, { required: false });
      } else if (section && last && /^\s+required\s*$/.test(line)) section.get(last).required = true;
    }
  }
  helpCache.set(service, out);
  return out;
}

// varProblem says why setting NAME for SERVICE is not known to mean anything (null when it is).
function varProblem(service, name) {
  if (AWS_VARS.has(name) || /^AWS_ENDPOINT_URL_[A-Z_]+$/.test(name)) return null;
  const arch = ARCHITECTURE_VARS[name];
  if (arch === 'all' || (Array.isArray(arch) && arch.includes(service))) return null;
  if ((DESIGN_VARS[name] || []).includes(service)) return null;
  if (QUALYS_VARS.has(name) && QUALYS_SERVICES.has(service)) return null;
  const help = helpVars(service);
  if (help && (help.shared.has(name) || help.own.has(name))) return null;
  // A shared runtime variable documented by any built service applies to all of them.
  for (const s of SERVICES) {
    const h = helpVars(s);
    if (h && h.shared.has(name)) return null;
  }
  return name + ' is neither in qfs-' + service + ' --help' + (help ? '' : ' (not built)') + ' nor ARCHITECTURE.md §7 for ' + service;
}

// requiredVars lists the variables qfs-<service> --help marks required ([] when not built).
function requiredVars(service) {
  const h = helpVars(service);
  if (!h) return [];
  return [...h.shared, ...h.own].filter(([, v]) => v.required).map(([k]) => k);
}

// ---- the Qualys platform table, wherever it is written ----

function podsFromC() {
  const text = fs.readFileSync(path.join(SRC, 'common', 'src', 'qualys_config.c'), 'utf8');
  const out = {};
  for (const m of text.matchAll(/\{"([A-Z0-9]+)",\s*"(https:\/\/[^"]+)"\}/g)) out[m[1]] = m[2];
  return out;
}

// podsFromReference reads shared/reference/qualys-csapi.md §1 when the shared folder is beside the
// repository (as on developer machines and in CI); null otherwise.
function podsFromReference() {
  const file = path.join(SRC, '..', 'shared', 'reference', 'qualys-csapi.md');
  if (!fs.existsSync(file)) return null;
  const text = fs.readFileSync(file, 'utf8');
  const start = text.indexOf('## 1.');
  const end = text.indexOf('## 2.', start);
  const out = {};
  for (const m of text.slice(start, end).matchAll(/^\| ([A-Z]+[0-9]) \| (https:\/\/\S+) \|/gm)) out[m[1]] = m[2];
  return out;
}

function podsFromScript() {
  const text = fs.readFileSync(path.join(SRC, 'deploy', 'qfs-deploy.sh'), 'utf8');
  const out = {};
  for (const m of text.matchAll(/^ {2}\[([A-Z0-9]+)\]=(https:\/\/\S+)$/gm)) out[m[1]] = m[2];
  return out;
}

module.exports = {
  SRC, BIN_DIR, SERVICES, ARCHITECTURE_VARS, DESIGN_VARS, binary, helpVars, varProblem, requiredVars,
  podsFromC, podsFromReference, podsFromScript,
};
