'use strict';
// The Makefile's operator targets (deploy/qfs-deploy.sh behind them). With DRY_RUN=1 each prints
// the aws/docker/curl commands it would run: the template, stack name, Region and every parameter
// the operator gave must be on them, no Qualys credential may appear (canary values), and a
// missing required parameter must stop the target with a message naming it. A second set of runs
// executes the targets against stand-in aws, curl and docker programs, to see what the real
// commands receive: the credentials only inside mode-600 files, never in an argument or in the
// programs' environment, and a test event that the rules and the parser accept.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const cfn = require('./deploy/cfn');
const qfs = require('./deploy/qfs');
const { commands, option, options } = require('./deploy/shell-words');
const { matches } = require('../aws-sim/event-pattern');

const SRC = cfn.SRC;
const CANARY = { QUALYS_USERNAME: 'canary-user-19c2', QUALYS_PASSWORD: 'canary-Pa$$w"o\\rd-7f3a', QUALYS_API_TOKEN: 'canary-token-e5d1' };
const SECRETS = Object.values(CANARY).concat(['canary-cmdline-4b8e']);
const TARGETS = ['help', 'deploy', 'deploy-region', 'update', 'destroy', 'destroy-region', 'deploy-hub', 'deploy-spoke',
  'deploy-spoke-stackset', 'logs', 'status', 'test-event', 'get-qualys-info', 'list-registries', 'image', 'push-image'];

const REGION = 'ap-southeast-2';
const STACK = 'qfs-canary';
const IMAGE = '123456789012.dkr.ecr.ap-southeast-2.amazonaws.com/qfs:1a2b3c';
const NETWORK = { VpcId: 'vpc-0123456789abcdef0', SubnetIds: 'subnet-0aaa1111bbbb2222c,subnet-0ddd3333eeee4444f' };
const MAIN = Object.assign({ AWS_REGION: REGION, STACK_NAME: STACK, QUALYS_POD: 'AU1', IMAGE_URI: IMAGE }, NETWORK);
const HUB = { OrganizationId: 'o-abcde12345', SecurityAccountId: '210987654321', CentralEventBusArn: 'arn:aws:events:ap-southeast-2:210987654321:event-bus/qfs-hub-bus' };
const QUALYS_TRUST = { QualysAccountId: '805950163170', QualysExternalId: '8146502212734410' };

// Every run gets this TMPDIR, which must be empty again at the end: the private files are removed.
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'qfs-make-test-'));

// make runs a target with VARS on make's command line and ENV as the whole environment (plus PATH).
function make(target, vars, env) {
  const args = ['-s', '--no-print-directory', target, ...Object.entries(vars || {}).map(([k, v]) => k + '=' + v)];
  // stdin is /dev/null: bash started with a socket as stdin (as Node's pipes are) reads ~/.bashrc,
  // which may put other programs first on PATH.
  const r = spawnSync('make', args, {
    cwd: SRC, encoding: 'utf8', timeout: 30000, stdio: ['ignore', 'pipe', 'pipe'],
    env: Object.assign({ PATH: process.env.PATH, HOME: process.env.HOME || os.tmpdir(), TMPDIR: TMP }, env || {}),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, all: r.stdout + r.stderr };
}

function dry(target, vars, env) {
  const r = make(target, vars, Object.assign({ DRY_RUN: '1' }, env || {}));
  for (const s of SECRETS) assert.ok(!r.all.includes(s), target + ': a secret was printed');
  return r;
}

function ok(target, vars, env) {
  const r = dry(target, vars, env);
  assert.equal(r.code, 0, target + ' failed: ' + r.stderr);
  return commands(r.stdout);
}

// find lists the commands that start with PREFIX (not the VAR=$(...) look-ups).
function find(cmds, ...prefix) {
  return cmds.filter((c) => !c.assign && prefix.every((p, i) => c.argv[i] === p));
}

function one(cmds, ...prefix) {
  const f = find(cmds, ...prefix);
  assert.equal(f.length, 1, prefix.join(' ') + ': ' + f.length + ' commands');
  return f[0].argv;
}

// overrides reads --parameter-overrides Name=Value ... into an object.
function overrides(argv) {
  return Object.fromEntries((options(argv, '--parameter-overrides') || []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

// mainDeploys checks the deploy sequence of deploy and deploy-hub (a new stack: the service with no
// task, the credentials, then one task) and returns the last deploy's argv.
function mainDeploys(cmds, template) {
  const deploys = find(cmds, 'aws', 'cloudformation', 'deploy').map((c) => c.argv);
  assert.equal(deploys.length, 2);
  for (const d of deploys) {
    assert.equal(option(d, '--template-file'), 'deploy/cloudformation/' + template + '.yaml');
    assert.equal(option(d, '--stack-name'), STACK);
    assert.deepEqual(options(d, '--capabilities'), ['CAPABILITY_NAMED_IAM']);
  }
  assert.equal(overrides(deploys[0]).DesiredCount, '0');
  assert.equal(overrides(deploys[1]).DesiredCount, '1');
  const { DesiredCount: a, ...first } = overrides(deploys[0]);
  const { DesiredCount: b, ...last } = overrides(deploys[1]);
  assert.deepEqual(first, last, 'the same parameters both times');
  const order = cmds.filter((c) => !c.assign).map((c) => c.argv.slice(0, 3).join(' '));
  const put = order.indexOf('aws secretsmanager put-secret-value');
  assert.ok(order.indexOf('aws cloudformation deploy') < put && put < order.lastIndexOf('aws cloudformation deploy'), 'credentials before the task starts');
  return deploys[1];
}

function templateParams(name) {
  return Object.keys(cfn.loadTemplate(name).tpl.Parameters);
}

// Every aws command names the Region; no command carries a secret.
function checkAll(cmds, region) {
  for (const c of cmds) {
    if (c.argv[0] === 'aws') assert.equal(option(c.argv, '--region'), region, c.line);
    assert.ok(['aws', 'docker', 'curl'].includes(c.argv[0]), 'only aws, docker and curl: ' + c.line);
  }
}

test('make help lists every operator target, help-deploy the parameters', () => {
  const r = make('help');
  assert.equal(r.code, 0);
  for (const t of TARGETS.filter((x) => x !== 'help')) assert.match(r.stdout, new RegExp('^  ' + t + ' ', 'm'), t);
  for (const t of ['setup', 'build', 'test', 'dev']) assert.match(r.stdout, new RegExp('^  ' + t + ' ', 'm'), t + ' is still there');
  const p = make('help-deploy');
  for (const v of ['QUALYS_POD', 'AWS_REGION', 'STACK_NAME', 'NotificationEmail', 'OrganizationId', 'OrgUnitIds', 'SecurityAccountId',
    'CentralEventBusArn', 'QUALYS_API_TOKEN', 'QUALYS_USERNAME', 'QUALYS_PASSWORD', 'DRY_RUN', 'REGION']) assert.ok(p.stdout.includes(v), v);
});

test('deploy: single-account.yaml with the stack, Region and every parameter given; credentials only from a file', () => {
  const given = Object.assign({}, MAIN, { NotificationEmail: 'secops@example.com', MaxPollAttempts: '45', PollIntervalSeconds: '30',
    NotifyMinSeverity: 'critical', CreateTrail: 'false', SecurityGroupId: 'sg-0123456789abcdef0' });
  const cmds = ok('deploy', given, { QUALYS_USERNAME: CANARY.QUALYS_USERNAME, QUALYS_PASSWORD: CANARY.QUALYS_PASSWORD });
  checkAll(cmds, REGION);
  const d = mainDeploys(cmds, 'single-account');
  const o = overrides(d);
  assert.equal(o.QualysPod, 'AU1');
  assert.equal(o.ImageUri, IMAGE);
  for (const k of ['VpcId', 'SubnetIds', 'NotificationEmail', 'MaxPollAttempts', 'PollIntervalSeconds', 'NotifyMinSeverity', 'CreateTrail', 'SecurityGroupId']) {
    assert.equal(o[k], given[k], k);
  }
  for (const k of Object.keys(o)) assert.ok(templateParams('single-account').includes(k), k + ' is a parameter of the template');
  // The ECR role's trust, asked from the platform's gateway with the credentials in files.
  assert.equal(o.QualysAccountId, '${QualysAccountId}');
  const auth = find(cmds, 'curl').map((c) => c.argv);
  assert.ok(auth.some((a) => a[a.length - 1] === 'https://gateway.qg1.apps.qualys.com.au/auth'));
  assert.ok(auth.some((a) => a[a.length - 1] === 'https://gateway.qg1.apps.qualys.com.au/csapi/v1.3/registry/aws-base'));
  const put = one(cmds, 'aws', 'secretsmanager', 'put-secret-value');
  assert.match(option(put, '--secret-string'), /^file:\/\//);
  assert.equal(option(put, '--secret-id'), '${QualysSecretArn}');
  assert.ok(cmds.some((c) => c.assign === 'QualysSecretArn' && option(c.argv, '--stack-name') === STACK));
});

test('deploy: QualysAccountId and QualysExternalId given are used as they are, without asking Qualys', () => {
  const cmds = ok('deploy', Object.assign({}, MAIN, QUALYS_TRUST), { QUALYS_API_TOKEN: CANARY.QUALYS_API_TOKEN });
  assert.equal(find(cmds, 'curl').length, 0);
  const o = overrides(mainDeploys(cmds, 'single-account'));
  assert.equal(o.QualysAccountId, QUALYS_TRUST.QualysAccountId);
  assert.equal(o.QualysExternalId, QUALYS_TRUST.QualysExternalId);
});

test('deploy-hub: centralized-hub.yaml with the organisation', () => {
  const cmds = ok('deploy-hub', Object.assign({}, MAIN, { OrganizationId: HUB.OrganizationId, NotificationEmail: 'a@example.org' }),
    { QUALYS_API_TOKEN: CANARY.QUALYS_API_TOKEN });
  checkAll(cmds, REGION);
  const o = overrides(mainDeploys(cmds, 'centralized-hub'));
  assert.deepEqual([o.OrganizationId, o.QualysPod, o.ImageUri, o.NotificationEmail, o.VpcId, o.SubnetIds],
    [HUB.OrganizationId, 'AU1', IMAGE, 'a@example.org', NETWORK.VpcId, NETWORK.SubnetIds]);
  for (const k of Object.keys(o)) assert.ok(templateParams('centralized-hub').includes(k), k);
  assert.match(option(one(cmds, 'aws', 'secretsmanager', 'put-secret-value'), '--secret-string'), /^file:\/\//);
});

test('deploy-spoke: centralized-spoke.yaml as STACK_NAME-spoke, with the hub and the Qualys trust', () => {
  const cmds = ok('deploy-spoke', Object.assign({ AWS_REGION: REGION, STACK_NAME: STACK }, HUB, QUALYS_TRUST));
  checkAll(cmds, REGION);
  const d = one(cmds, 'aws', 'cloudformation', 'deploy');
  assert.equal(option(d, '--template-file'), 'deploy/cloudformation/centralized-spoke.yaml');
  assert.equal(option(d, '--stack-name'), STACK + '-spoke');
  const o = overrides(d);
  assert.equal(o.CentralEventBusArn, HUB.CentralEventBusArn);
  assert.equal(o.SecurityAccountId, HUB.SecurityAccountId);
  assert.equal(o.QualysAccountId, QUALYS_TRUST.QualysAccountId);
  assert.equal(o.QualysExternalId, QUALYS_TRUST.QualysExternalId);
  assert.equal(o.GlobalResourcesRegion, REGION);
  assert.equal(o.OrganizationId, undefined, 'not a parameter of the spoke');
  for (const k of Object.keys(o)) assert.ok(templateParams('centralized-spoke').includes(k), k);
});

test('deploy-spoke-stackset: a service-managed StackSet for the OUs and Regions given', () => {
  const cmds = ok('deploy-spoke-stackset', Object.assign({ AWS_REGION: REGION, STACK_NAME: STACK, QUALYS_POD: 'US2', OrgUnitIds: 'ou-ab12-34cd5678,ou-ef90-12ab3456',
    REGION: 'ap-southeast-2,us-east-1', CALL_AS: 'DELEGATED_ADMIN' }, HUB), { QUALYS_API_TOKEN: CANARY.QUALYS_API_TOKEN });
  checkAll(cmds, REGION);
  const create = one(cmds, 'aws', 'cloudformation', 'create-stack-set');
  const update = one(cmds, 'aws', 'cloudformation', 'update-stack-set');
  const instances = one(cmds, 'aws', 'cloudformation', 'create-stack-instances');
  for (const c of [create, update, instances]) {
    assert.equal(option(c, '--stack-set-name'), STACK + '-spoke');
    assert.equal(option(c, '--call-as'), 'DELEGATED_ADMIN');
  }
  for (const c of [create, update]) {
    assert.equal(option(c, '--template-body'), 'file://deploy/cloudformation/centralized-spoke.yaml');
    const params = Object.fromEntries(options(c, '--parameters').map((p) => /^ParameterKey=([^,]+),ParameterValue=(.*)$/.exec(p).slice(1)));
    assert.equal(params.CentralEventBusArn, HUB.CentralEventBusArn);
    assert.equal(params.SecurityAccountId, HUB.SecurityAccountId);
    assert.equal(params.GlobalResourcesRegion, REGION);
    assert.equal(params.QualysAccountId, '${QualysAccountId}', 'asked from Qualys');
  }
  assert.equal(option(create, '--permission-model'), 'SERVICE_MANAGED');
  for (const c of [update, instances]) {
    assert.equal(option(c, '--deployment-targets'), 'OrganizationalUnitIds=ou-ab12-34cd5678,ou-ef90-12ab3456');
    assert.deepEqual(options(c, '--regions'), ['ap-southeast-2', 'us-east-1']);
  }
});

test('deploy-region: regional-spoke.yaml in each Region of REGION, forwarding to the primary Region\'s bus', () => {
  let cmds = ok('deploy-region', { AWS_REGION: REGION, STACK_NAME: STACK, REGION: 'us-east-1,eu-central-1' });
  const lookup = cmds.find((c) => c.assign === 'EventBusArn');
  assert.equal(option(lookup.argv, '--region'), REGION);
  assert.equal(option(lookup.argv, '--stack-name'), STACK);
  let deploys = find(cmds, 'aws', 'cloudformation', 'deploy').map((c) => c.argv);
  assert.deepEqual(deploys.map((d) => option(d, '--region')), ['us-east-1', 'eu-central-1']);
  for (const d of deploys) {
    assert.equal(option(d, '--template-file'), 'deploy/cloudformation/regional-spoke.yaml');
    assert.equal(option(d, '--stack-name'), STACK + '-regional');
    assert.deepEqual(overrides(d), { CentralEventBusArn: '${EventBusArn}' });
  }
  cmds = ok('deploy-region', { AWS_REGION: REGION, STACK_NAME: STACK, REGION: 'us-west-2', CentralEventBusArn: HUB.CentralEventBusArn });
  deploys = find(cmds, 'aws', 'cloudformation', 'deploy').map((c) => c.argv);
  assert.equal(deploys.length, 1);
  assert.deepEqual(overrides(deploys[0]), { CentralEventBusArn: HUB.CentralEventBusArn });
  const same = dry('deploy-region', { AWS_REGION: REGION, REGION: REGION });
  assert.notEqual(same.code, 0, 'the primary Region cannot forward to itself');
});

test('update: builds and pushes the image for both platforms, rolls it out, forces a new deployment', () => {
  const repo = '123456789012.dkr.ecr.ap-southeast-2.amazonaws.com/qfs';
  const cmds = ok('update', { AWS_REGION: REGION, STACK_NAME: STACK, ECR_REPO: repo, IMAGE_TAG: 'v2', NotifyMinSeverity: 'medium' });
  const login = one(cmds, 'aws', 'ecr', 'get-login-password');
  assert.equal(option(login, '--region'), 'ap-southeast-2');
  assert.ok(one(cmds, 'docker', 'login').includes('--password-stdin'));
  const build = one(cmds, 'docker', 'buildx', 'build');
  assert.equal(option(build, '--platform'), 'linux/amd64,linux/arm64');
  assert.equal(option(build, '--tag'), repo + ':v2');
  assert.ok(build.includes('--push'));
  const d = one(cmds, 'aws', 'cloudformation', 'deploy');
  assert.equal(option(d, '--stack-name'), STACK);
  assert.equal(option(d, '--template-file'), 'deploy/cloudformation/${Template}.yaml', 'the template the stack was deployed with');
  assert.deepEqual(overrides(d), { ImageUri: repo + ':v2', NotifyMinSeverity: 'medium' });
  const u = one(cmds, 'aws', 'ecs', 'update-service');
  assert.deepEqual([option(u, '--cluster'), option(u, '--service'), u.includes('--force-new-deployment')], [STACK, 'qfs', true]);
  assert.equal(find(cmds, 'aws', 'secretsmanager').length, 0, 'credentials unchanged when none are given');
  const withTemplate = ok('update', { AWS_REGION: REGION, IMAGE_URI: IMAGE, TEMPLATE: 'centralized-hub' }, { QUALYS_API_TOKEN: CANARY.QUALYS_API_TOKEN });
  assert.equal(option(one(withTemplate, 'aws', 'cloudformation', 'deploy'), '--template-file'), 'deploy/cloudformation/centralized-hub.yaml');
  assert.equal(find(withTemplate, 'docker').length, 0);
  assert.match(option(one(withTemplate, 'aws', 'secretsmanager', 'put-secret-value'), '--secret-string'), /^file:\/\//);
});

test('destroy and destroy-region delete the stacks and wait', () => {
  let cmds = ok('destroy', { AWS_REGION: REGION, STACK_NAME: STACK });
  checkAll(cmds, REGION);
  assert.equal(option(one(cmds, 'aws', 'cloudformation', 'delete-stack'), '--stack-name'), STACK);
  assert.equal(option(one(cmds, 'aws', 'cloudformation', 'wait', 'stack-delete-complete'), '--stack-name'), STACK);
  cmds = ok('destroy-region', { STACK_NAME: STACK, REGION: 'us-east-1,eu-central-1' });
  assert.deepEqual(find(cmds, 'aws', 'cloudformation', 'delete-stack').map((c) => [option(c.argv, '--region'), option(c.argv, '--stack-name')]),
    [['us-east-1', STACK + '-regional'], ['eu-central-1', STACK + '-regional']]);
});

test('logs, status and test-event read the stack they are given', () => {
  let cmds = ok('logs', { AWS_REGION: REGION, STACK_NAME: STACK, SERVICE: 'scanner-poller' });
  const tail = one(cmds, 'aws', 'logs', 'tail');
  assert.equal(tail[3], '/qfs/' + STACK);
  assert.equal(option(tail, '--log-stream-name-prefix'), 'scanner-poller/');
  assert.ok(tail.includes('--follow'));
  cmds = ok('status', { AWS_REGION: REGION, STACK_NAME: STACK });
  checkAll(cmds, REGION);
  assert.equal(option(one(cmds, 'aws', 'cloudformation', 'describe-stacks'), '--stack-name'), STACK);
  assert.deepEqual(find(cmds, 'aws', 'sqs', 'get-queue-attributes').map((c) => option(c.argv, '--queue-url')), ['${QueueUrl}', '${DeadLetterQueueUrl}']);
  const ecs = one(cmds, 'aws', 'ecs', 'describe-services');
  assert.deepEqual([option(ecs, '--cluster'), option(ecs, '--services')], [STACK, 'qfs']);
  cmds = ok('test-event', { AWS_REGION: REGION, STACK_NAME: STACK });
  checkAll(cmds, REGION);
  const send = one(cmds, 'aws', 'sqs', 'send-message');
  assert.equal(option(send, '--queue-url'), '${QueueUrl}');
  assert.match(option(send, '--message-body'), /^file:\/\//);
});

test('get-qualys-info and list-registries: the POD\'s gateway, credentials and token only in files', () => {
  let cmds = ok('get-qualys-info', { QUALYS_POD: 'EU3' }, { QUALYS_USERNAME: CANARY.QUALYS_USERNAME, QUALYS_PASSWORD: CANARY.QUALYS_PASSWORD });
  checkAll(cmds, null);
  const urls = find(cmds, 'curl').map((c) => c.argv[c.argv.length - 1]);
  assert.deepEqual(urls, ['https://gateway.qg3.apps.qualys.it/auth', 'https://gateway.qg3.apps.qualys.it/csapi/v1.3/registry/aws-base',
    'https://gateway.qg3.apps.qualys.it/csapi/v1.3/registry/aws/connectors']);
  const auth = find(cmds, 'curl')[0].argv;
  assert.deepEqual(auth.filter((a, i) => auth[i - 1] === '--data-urlencode').map((a) => a.replace(/@.*/, '@')), ['username@', 'password@']);
  for (const c of find(cmds, 'curl').slice(1)) assert.match(option(c.argv, '--header'), /^@\//, 'the bearer token comes from a file');
  cmds = ok('list-registries', { QUALYS_POD: 'KSA1' }, { QUALYS_API_TOKEN: CANARY.QUALYS_API_TOKEN });
  assert.equal(find(cmds, 'curl').length, 1, 'a token needs no /auth');
  assert.match(find(cmds, 'curl')[0].argv.at(-1), /^https:\/\/gateway\.qg1\.apps\.qualysksa\.com\/csapi\/v1\.3\/registry\?/);
});

test('image and push-image: docker buildx for linux/amd64 and linux/arm64', () => {
  let cmds = ok('image', { IMAGE_TAG: 't9' });
  let b = one(cmds, 'docker', 'buildx', 'build');
  assert.equal(option(b, '--platform'), 'linux/amd64,linux/arm64');
  assert.equal(option(b, '--tag'), 'qfs:t9');
  assert.equal(option(b, '--file'), 'Dockerfile');
  assert.equal(b.at(-1), '.');
  cmds = ok('image', { IMAGE_TAG: 't9', PLATFORMS: 'linux/arm64' });
  assert.ok(one(cmds, 'docker', 'buildx', 'build').includes('--load'), 'one platform is loaded into the local engine');
  cmds = ok('push-image', { ECR_REPO: '123456789012.dkr.ecr.eu-north-1.amazonaws.com/team/qfs', IMAGE_TAG: 't9' });
  b = one(cmds, 'docker', 'buildx', 'build');
  assert.equal(option(b, '--tag'), '123456789012.dkr.ecr.eu-north-1.amazonaws.com/team/qfs:t9');
  assert.ok(b.includes('--push'));
  assert.equal(option(one(cmds, 'docker', 'login'), '--password-stdin'), '123456789012.dkr.ecr.eu-north-1.amazonaws.com');
});

test('secrets given on make\'s command line do not reach the output either', () => {
  const r = dry('deploy', Object.assign({}, MAIN, QUALYS_TRUST, { QUALYS_API_TOKEN: 'canary-cmdline-4b8e' }));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /"token": "\*+"/, 'the masked secret file is shown');
});

test('a missing required parameter stops the target with a message naming it', () => {
  const creds = { QUALYS_API_TOKEN: CANARY.QUALYS_API_TOKEN };
  const cases = [
    ['deploy', Object.assign({}, MAIN, { AWS_REGION: '' }), creds, ['AWS_REGION']],
    ['deploy', Object.assign({}, MAIN, { QUALYS_POD: '' }), creds, ['QUALYS_POD']],
    ['deploy', Object.assign({}, MAIN, { IMAGE_URI: '' }), creds, ['IMAGE_URI or ECR_REPO']],
    ['deploy', Object.assign({}, MAIN, { VpcId: '', SubnetIds: '' }), creds, ['VpcId', 'SubnetIds']],
    ['deploy', MAIN, {}, ['QUALYS_API_TOKEN', 'QUALYS_USERNAME', 'QUALYS_PASSWORD']],
    ['deploy', MAIN, { QUALYS_USERNAME: CANARY.QUALYS_USERNAME }, ['QUALYS_PASSWORD']],
    ['deploy-hub', MAIN, creds, ['OrganizationId']],
    ['deploy-spoke', { AWS_REGION: REGION }, creds, ['CentralEventBusArn', 'SecurityAccountId']],
    ['deploy-spoke', Object.assign({ AWS_REGION: REGION }, HUB), {}, ['QualysAccountId', 'QualysExternalId', 'QUALYS_API_TOKEN']],
    ['deploy-spoke-stackset', Object.assign({ AWS_REGION: REGION }, HUB), creds, ['OrgUnitIds']],
    ['deploy-region', { AWS_REGION: REGION }, {}, ['REGION']],
    ['destroy-region', {}, {}, ['REGION']],
    ['update', { AWS_REGION: REGION }, {}, ['IMAGE_URI or ECR_REPO']],
    ['destroy', {}, {}, ['AWS_REGION']],
    ['logs', {}, {}, ['AWS_REGION']],
    ['status', {}, {}, ['AWS_REGION']],
    ['test-event', {}, {}, ['AWS_REGION']],
    ['get-qualys-info', {}, creds, ['QUALYS_POD']],
    ['list-registries', { QUALYS_POD: 'US1' }, {}, ['QUALYS_API_TOKEN']],
    ['push-image', {}, {}, ['ECR_REPO']],
  ];
  for (const [target, vars, env, names] of cases) {
    const r = dry(target, vars, env);
    assert.notEqual(r.code, 0, target + ' should fail without ' + names.join(', '));
    assert.equal(r.stdout.split('\n').filter((l) => l && !l.startsWith('#')).length, 0, target + ': no command before the check');
    assert.match(r.stderr, /missing required parameter/, target);
    for (const n of names) assert.ok(r.stderr.includes(n), target + ': the message names ' + n + ': ' + r.stderr);
  }
  assert.notEqual(dry('deploy', Object.assign({}, MAIN, { QUALYS_POD: 'XX9' }), creds).code, 0, 'an unknown POD');
  assert.notEqual(dry('deploy', Object.assign({}, MAIN, { AWS_REGION: 'mars' }), creds).code, 0, 'not a Region');
});

// ---- the same targets against stand-in aws, curl and docker ----

const FAKE = `#!/usr/bin/env node
// Stand-in for aws, curl and docker: logs argv, the environment's secrets and every file:// or @file
// argument's content and mode, and answers what qfs-deploy.sh asks.
const fs = require('fs');
const path = require('path');
const name = path.basename(process.argv[1]);
const argv = process.argv.slice(2);
const files = {};
argv.forEach((a, i) => {
  let f = null;
  if (a.startsWith('file://')) f = a.slice(7);
  else if (a.startsWith('@')) f = a.slice(1);
  else if (argv[i - 1] === '--data-urlencode' && a.includes('@')) f = a.slice(a.indexOf('@') + 1);
  if (f && fs.existsSync(f)) files[f] = { content: fs.readFileSync(f, 'utf8'), mode: fs.statSync(f).mode & 0o777 };
});
const env = Object.keys(process.env).filter((k) => /^(QUALYS_(API_TOKEN|USERNAME|PASSWORD)|MAKEFLAGS|MFLAGS)$/.test(k));
fs.appendFileSync(process.env.FAKE_LOG, JSON.stringify({ name, argv, files, env }) + '\\n');
const q = argv.join(' ');
const out = (s) => process.stdout.write(s + '\\n');
if (name === 'curl') {
  const o = argv[argv.indexOf('--output') + 1];
  const url = argv[argv.length - 1];
  if (url.endsWith('/auth')) fs.writeFileSync(o, 'eyJhbGciOiJIUzUxMiJ9.canary-jwt.sig\\n');
  else if (url.endsWith('/aws-base')) fs.writeFileSync(o, '{"accountId": "805950163170", "externalId": 8146502212734410}');
  else fs.writeFileSync(o, '[]');
} else if (name === 'aws') {
  if (q.includes('Stacks[0].StackStatus')) process.exit(process.env.FAKE_STACK_EXISTS ? 0 : 255);
  if (q.includes('get-caller-identity')) out('123456789012');
  else if (q.includes("'QualysSecretArn'")) out('arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:QualysSecret-AbCdEf');
  else if (q.includes("'QueueUrl'")) out('https://sqs.ap-southeast-2.amazonaws.com/123456789012/qfs-canary-events');
  else if (q.includes("'ImageUri'")) out('${IMAGE}');
  else if (q.includes('get-login-password')) out('ecr-login-password');
}
`;

function fakeRun(target, vars, env) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qfs-fake-'));
  try {
    for (const n of ['aws', 'curl', 'docker']) {
      fs.writeFileSync(path.join(dir, n), FAKE.replace('${IMAGE}', IMAGE), { mode: 0o755 });
    }
    const log = path.join(dir, 'log.jsonl');
    const r = make(target, vars, Object.assign({ PATH: dir + ':' + process.env.PATH, FAKE_LOG: log }, env));
    const calls = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l)) : [];
    return Object.assign(r, { calls });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('deploy, run for real against stand-ins: the secret reaches Secrets Manager as JSON from a mode-600 file, and nothing else', () => {
  const r = fakeRun('deploy', MAIN, { QUALYS_USERNAME: CANARY.QUALYS_USERNAME, QUALYS_PASSWORD: CANARY.QUALYS_PASSWORD });
  assert.equal(r.code, 0, r.stderr);
  for (const s of SECRETS) assert.ok(!r.all.includes(s), 'printed a secret');
  for (const c of r.calls) {
    assert.deepEqual(c.env, [], c.name + ' got credentials in its environment');
    for (const s of SECRETS) assert.ok(!c.argv.join(' ').includes(s), c.name + ' got a secret as an argument');
  }
  const auth = r.calls.find((c) => c.name === 'curl' && c.argv.at(-1).endsWith('/auth'));
  assert.deepEqual(Object.values(auth.files).map((f) => [f.content, f.mode]), [[CANARY.QUALYS_USERNAME, 0o600], [CANARY.QUALYS_PASSWORD, 0o600]]);
  const base = r.calls.find((c) => c.name === 'curl' && c.argv.at(-1).endsWith('/aws-base'));
  assert.deepEqual(Object.values(base.files).map((f) => f.content), ['Authorization: Bearer eyJhbGciOiJIUzUxMiJ9.canary-jwt.sig\n']);
  const steps = r.calls.filter((c) => c.name === 'aws' && ['deploy', 'put-secret-value'].includes(c.argv[1]));
  assert.deepEqual(steps.map((c) => c.argv[1] === 'deploy' ? 'deploy DesiredCount=' + overrides(c.argv).DesiredCount : c.argv[1]),
    ['deploy DesiredCount=0', 'put-secret-value', 'deploy DesiredCount=1'], 'a new stack gets its task once the secret is written');
  const d = steps[0];
  assert.equal(overrides(d.argv).QualysAccountId, '805950163170', 'the Qualys answer reaches the template');
  assert.equal(overrides(d.argv).QualysExternalId, '8146502212734410');
  const again = fakeRun('deploy', MAIN, { QUALYS_API_TOKEN: CANARY.QUALYS_API_TOKEN, FAKE_STACK_EXISTS: '1' });
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(again.calls.filter((c) => c.name === 'aws' && ['deploy', 'put-secret-value'].includes(c.argv[1]))
    .map((c) => c.argv[1] === 'deploy' ? 'deploy DesiredCount=' + overrides(c.argv).DesiredCount : c.argv[1]),
  ['put-secret-value', 'deploy DesiredCount=1'], 'an existing stack keeps its task');
  const put = r.calls.find((c) => c.name === 'aws' && c.argv[1] === 'put-secret-value');
  assert.equal(option(put.argv, '--secret-id'), 'arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:QualysSecret-AbCdEf');
  const [file] = Object.values(put.files);
  assert.equal(file.mode, 0o600);
  assert.deepEqual(JSON.parse(file.content), { username: CANARY.QUALYS_USERNAME, password: CANARY.QUALYS_PASSWORD });
  const tmp = Object.keys(put.files)[0];
  assert.ok(!fs.existsSync(path.dirname(tmp)), 'the private directory is removed on exit');
});

test('test-event, run for real against stand-ins: an event of this account, Region and image that the rules and the parser take', () => {
  const r = fakeRun('test-event', { AWS_REGION: REGION, STACK_NAME: STACK });
  assert.equal(r.code, 0, r.stderr);
  const send = r.calls.find((c) => c.name === 'aws' && c.argv[1] === 'send-message');
  assert.equal(option(send.argv, '--queue-url'), 'https://sqs.ap-southeast-2.amazonaws.com/123456789012/qfs-canary-events');
  const event = JSON.parse(Object.values(send.files)[0].content);
  assert.equal(event.account, '123456789012');
  assert.equal(event.region, REGION);
  assert.equal(event.detail.responseElements.taskDefinition.containerDefinitions[0].image, IMAGE);
  const pattern = JSON.parse(fs.readFileSync(path.join(SRC, 'deploy', 'event-patterns.json'), 'utf8'));
  assert.ok(matches(pattern, event));
  const parser = qfs.binary('parser');
  if (parser) {
    const p = spawnSync(parser, ['--explain', '-'], { input: JSON.stringify(event), encoding: 'utf8', timeout: 10000 });
    assert.equal(p.status, 0, p.stderr);
    const images = p.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((m) => JSON.stringify(m).includes('qfs.image.v1'));
    assert.equal(images.length, 1, 'the parser makes one image record of it: ' + p.stdout);
  }
});

test('no target leaves a private temporary directory behind', () => {
  assert.deepEqual(fs.readdirSync(TMP), []);
  fs.rmSync(TMP, { recursive: true, force: true });
});
