'use strict';
// The event patterns of the CloudFormation rules, run through aws-sim's EventBridge matcher
// (tests/sim/aws-sim/event-pattern.js): they take the ECS deploy calls and the early task state
// changes, from any account and Region, and nothing else: no read-only call, no other ECS call,
// no other service's event.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const cfn = require('./deploy/cfn');
const { matches, validate } = require('../aws-sim/event-pattern');

const FIXTURES = path.join(cfn.SRC, 'tests', 'fixtures', 'events');
const DEPLOY_CALLS = ['RegisterTaskDefinition', 'RunTask', 'StartTask', 'CreateService', 'UpdateService', 'CreateTaskSet'];

// Every rule of every template, by "template/LogicalId".
const PATTERNS = [];
for (const t of cfn.loadAll()) {
  for (const [id, r] of cfn.resourcesOfType(t.tpl, 'AWS::Events::Rule')) PATTERNS.push([t.name + '/' + id, r.Properties.EventPattern]);
}
PATTERNS.push(['deploy/event-patterns.json', JSON.parse(fs.readFileSync(path.join(cfn.SRC, 'deploy', 'event-patterns.json'), 'utf8'))]);

function apiCall(eventName, over) {
  const o = over || {};
  return {
    version: '0',
    id: 'e-' + eventName,
    'detail-type': o.detailType || 'AWS API Call via CloudTrail',
    source: o.source || 'aws.ecs',
    account: o.account || '111122223333',
    time: '2026-05-01T10:00:00Z',
    region: o.region || 'eu-west-1',
    resources: [],
    detail: Object.assign({
      eventVersion: '1.11',
      eventSource: o.eventSource || 'ecs.amazonaws.com',
      eventName,
      awsRegion: o.region || 'eu-west-1',
      readOnly: !!o.readOnly,
      eventType: 'AwsApiCall',
      managementEvent: true,
      requestParameters: {},
      responseElements: o.failed ? null : {},
    }, o.failed ? { errorCode: 'AccessDenied', errorMessage: 'not authorized' } : {}),
  };
}

function taskStateChange(lastStatus) {
  return {
    version: '0', id: 'ts-' + lastStatus, 'detail-type': 'ECS Task State Change', source: 'aws.ecs',
    account: '222233334444', time: '2026-05-01T10:00:00Z', region: 'us-east-1', resources: [],
    detail: { lastStatus, desiredStatus: 'RUNNING', clusterArn: 'arn:aws:ecs:us-east-1:222233334444:cluster/prod', containers: [] },
  };
}

const SHOULD_MATCH = [
  ...DEPLOY_CALLS.map((n) => [n, apiCall(n)]),
  ['a failed deploy call (the parser records why it skipped it)', apiCall('UpdateService', { failed: true })],
  ['a call forwarded from another account and Region', apiCall('RunTask', { account: '222233334444', region: 'ap-southeast-2' })],
  // RUNNING: the containers' imageDigest is known once the task runs, so qfs scans the exact image.
  ['task state change RUNNING', taskStateChange('RUNNING')],
];

const SHOULD_NOT_MATCH = [
  ...['DescribeTaskDefinition', 'DescribeServices', 'DescribeTasks', 'ListTasks', 'ListServices', 'ListTaskDefinitions']
    .map((n) => ['read-only ' + n, apiCall(n, { readOnly: true })]),
  ...['CreateCluster', 'DeleteService', 'StopTask', 'DeregisterTaskDefinition', 'TagResource', 'UpdateContainerAgent', 'DeleteTaskSet']
    .map((n) => ['other ECS call ' + n, apiCall(n)]),
  ['EC2 RunInstances', apiCall('RunInstances', { source: 'aws.ec2', eventSource: 'ec2.amazonaws.com' })],
  ['Step Functions calling RunTask', apiCall('RunTask', { source: 'aws.states', eventSource: 'states.amazonaws.com' })],
  ['Lambda CreateFunction', apiCall('CreateFunction20150331', { source: 'aws.lambda', eventSource: 'lambda.amazonaws.com' })],
  ['EKS CreateCluster', apiCall('CreateCluster', { source: 'aws.eks', eventSource: 'eks.amazonaws.com' })],
  ['an ECS call with the wrong event source', apiCall('RunTask', { eventSource: 'ec2.amazonaws.com' })],
  ['an event name in another case', apiCall('runtask')],
  ['ECS Container Instance State Change', apiCall('RunTask', { detailType: 'ECS Container Instance State Change' })],
  ['ECS Service Action', apiCall('UpdateService', { detailType: 'ECS Service Action' })],
  ['ECS Deployment State Change', apiCall('UpdateService', { detailType: 'ECS Deployment State Change' })],
  ['task state change PROVISIONING', taskStateChange('PROVISIONING')],
  ['task state change PENDING', taskStateChange('PENDING')],
  ['task state change STOPPED', taskStateChange('STOPPED')],
  ['task state change DEPROVISIONING', taskStateChange('DEPROVISIONING')],
];

for (const [where, pattern] of PATTERNS) {
  test(where + ': a valid pattern that takes the deploy events and nothing else', () => {
    validate(pattern);
    for (const [what, ev] of SHOULD_MATCH) assert.ok(matches(pattern, ev), 'should match: ' + what);
    for (const [what, ev] of SHOULD_NOT_MATCH) assert.ok(!matches(pattern, ev), 'should not match: ' + what);
  });
}

// The fixtures of tests/fixtures/events/ that EventBridge would deliver, and what the rules do with
// them. Named ones are checked by name; any other fixture by what it is.
const FIXTURE_MATCH = ['register-task-definition', 'run-task-with-images', 'run-task-needs-lookup', 'start-task', 'create-service',
  'update-service', 'update-service-force-new-deployment-real-shape', 'create-task-set', 'cross-account-cross-region-images',
  'failed-update-service', 'failed-register-task-definition'];
const FIXTURE_NO_MATCH = {
  'unsupported-create-cluster': 'an ECS call that deploys nothing',
  'unsupported-describe-task-definition': 'a read-only call',
  'unsupported-non-ecs-api-call': 'another service\'s API call',
  'unsupported-non-ecs-source': 'another service\'s event',
  'unsupported-run-task-other-source': 'RunTask of another service',
  'unsupported-event-name-not-ascii': 'not an ECS API name',
};

function isDeployEvent(ev) {
  if (ev.source !== 'aws.ecs' || !ev.detail || typeof ev.detail !== 'object') return false;
  if (ev['detail-type'] === 'AWS API Call via CloudTrail') return ev.detail.eventSource === 'ecs.amazonaws.com' && DEPLOY_CALLS.includes(ev.detail.eventName);
  if (ev['detail-type'] === 'ECS Task State Change') return ev.detail.lastStatus === 'RUNNING';
  return false;
}

test('fixture events: the deploy calls match, read-only calls and other services\' events do not', (t) => {
  if (!fs.existsSync(FIXTURES)) {
    t.skip('no tests/fixtures/events');
    return;
  }
  const events = {};
  for (const f of fs.readdirSync(FIXTURES).filter((n) => n.endsWith('.json'))) {
    let ev;
    try {
      ev = JSON.parse(fs.readFileSync(path.join(FIXTURES, f), 'utf8'));
    } catch (e) {
      continue; // the deliberately broken ones never reach a rule
    }
    if (ev && typeof ev === 'object' && !Array.isArray(ev) && typeof ev.source === 'string') events[f.slice(0, -5)] = ev;
  }
  assert.ok(Object.keys(events).length >= 20, 'the fixtures hold EventBridge events');
  const pattern = PATTERNS[PATTERNS.length - 1][1];
  let matched = 0;
  for (const [name, ev] of Object.entries(events)) {
    const got = matches(pattern, ev);
    if (FIXTURE_MATCH.includes(name)) assert.ok(got, name + ' should match');
    else if (name in FIXTURE_NO_MATCH) assert.ok(!got, name + ' should not match: ' + FIXTURE_NO_MATCH[name]);
    else assert.equal(got, isDeployEvent(ev), name);
    if (got) matched++;
  }
  // The fixture set belongs to the parser's tests and may change; most of the named ones must be there.
  const present = [...FIXTURE_MATCH, ...Object.keys(FIXTURE_NO_MATCH)].filter((n) => n in events);
  assert.ok(present.length >= 12, 'named fixtures present: ' + present.join(', '));
  assert.ok(matched >= 8 && matched < Object.keys(events).length, matched + ' of ' + Object.keys(events).length + ' fixtures match');
});

test('the compose stack\'s sample event is one the rules take', () => {
  const ev = JSON.parse(fs.readFileSync(path.join(cfn.SRC, 'deploy', 'compose', 'sample-event.json'), 'utf8'));
  for (const [where, pattern] of PATTERNS) assert.ok(matches(pattern, ev), where);
});
