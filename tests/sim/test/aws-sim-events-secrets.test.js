'use strict';
// Contract tests of aws-sim's EventBridge and Secrets Manager against the real AWS SDK v3 clients:
// rules and targets, CloudTrail events delivered to SQS as the full envelope, PutEvents rules,
// and secrets with their versions.

const test = require('node:test');
const assert = require('node:assert');
const {
  EventBridgeClient, PutRuleCommand, PutTargetsCommand, ListRulesCommand, RemoveTargetsCommand, DeleteRuleCommand, PutEventsCommand,
} = require('@aws-sdk/client-eventbridge');
const { SQSClient, CreateQueueCommand, ReceiveMessageCommand, GetQueueAttributesCommand } = require('@aws-sdk/client-sqs');
const { STSClient, AssumeRoleCommand } = require('@aws-sdk/client-sts');
const {
  SecretsManagerClient, CreateSecretCommand, GetSecretValueCommand, PutSecretValueCommand,
} = require('@aws-sdk/client-secrets-manager');
const { startSim, client, admin, rejects } = require('../aws-sim/testing');

const ECS_PATTERN = {
  source: ['aws.ecs'],
  'detail-type': ['AWS API Call via CloudTrail'],
  detail: { eventSource: ['ecs.amazonaws.com'], eventName: ['RegisterTaskDefinition', 'RunTask', 'CreateService', 'UpdateService'] },
};

let sim;
let eb;
let sqs;
let sm;

test.before(async () => {
  sim = await startSim();
  eb = client(EventBridgeClient, sim);
  sqs = client(SQSClient, sim);
  sm = client(SecretsManagerClient, sim);
});

test.after(async () => {
  for (const c of [eb, sqs, sm]) c.destroy();
  await sim.close();
});

async function queueWithArn(name) {
  const url = (await sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl;
  const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))).Attributes.QueueArn;
  return { url, arn };
}

test('a CloudTrail ECS event delivered to the default bus lands in SQS as the full envelope', async () => {
  const q = await queueWithArn('qfs-deploy-events');
  const rule = await eb.send(new PutRuleCommand({ Name: 'qfs-ecs-deploys', EventPattern: JSON.stringify(ECS_PATTERN), State: 'ENABLED' }));
  assert.strictEqual(rule.RuleArn, 'arn:aws:events:eu-west-1:111122223333:rule/qfs-ecs-deploys');
  const t = await eb.send(new PutTargetsCommand({ Rule: 'qfs-ecs-deploys', Targets: [{ Id: 'sqs', Arn: q.arn }] }));
  assert.strictEqual(t.FailedEntryCount, 0);
  const listed = await eb.send(new ListRulesCommand({ NamePrefix: 'qfs-' }));
  assert.deepStrictEqual(listed.Rules.map((r) => r.Name), ['qfs-ecs-deploys']);
  assert.deepStrictEqual(JSON.parse(listed.Rules[0].EventPattern), ECS_PATTERN);

  const detail = {
    eventSource: 'ecs.amazonaws.com', eventName: 'RegisterTaskDefinition', awsRegion: 'eu-west-1', eventTime: '2026-05-01T10:00:00Z',
    requestParameters: { family: 'web', containerDefinitions: [{ name: 'app', image: '111122223333.dkr.ecr.eu-west-1.amazonaws.com/web:1.4.2' }] },
    responseElements: { taskDefinition: { family: 'web', revision: 42, taskDefinitionArn: 'arn:aws:ecs:eu-west-1:111122223333:task-definition/web:42' } },
  };
  const delivered = await admin(sim, 'POST', '/_sim/events/deliver', { account: '111122223333', region: 'eu-west-1', detail });
  assert.strictEqual(delivered.status, 200);
  assert.strictEqual(delivered.body.deliveries.length, 1);
  assert.strictEqual(delivered.body.deliveries[0].ok, true);

  const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q.url, WaitTimeSeconds: 2 }));
  assert.strictEqual(r.Messages.length, 1);
  const body = r.Messages[0].Body;
  const ev = JSON.parse(body);
  assert.deepStrictEqual(Object.keys(ev), ['version', 'id', 'detail-type', 'source', 'account', 'time', 'region', 'resources', 'detail']);
  assert.strictEqual(ev.version, '0');
  assert.match(ev.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.strictEqual(ev['detail-type'], 'AWS API Call via CloudTrail');
  assert.strictEqual(ev.source, 'aws.ecs');
  assert.strictEqual(ev.account, '111122223333');
  assert.strictEqual(ev.time, '2026-05-01T10:00:00Z');
  assert.strictEqual(ev.region, 'eu-west-1');
  assert.deepStrictEqual(ev.resources, []);
  assert.strictEqual(ev.detail.eventName, 'RegisterTaskDefinition');
  assert.strictEqual(ev.detail.responseElements.taskDefinition.revision, 42);
  assert.strictEqual(ev.detail.eventType, 'AwsApiCall');
  assert.strictEqual(ev.detail.readOnly, false);
  assert.match(ev.detail.eventID, /^[0-9a-f-]{36}$/);
  assert.notStrictEqual(ev.detail.eventID, ev.id);
});

test('events that do not match, or read-only calls under an ENABLED rule, are not delivered', async () => {
  const q = await queueWithArn('qfs-only-matching');
  await eb.send(new PutRuleCommand({ Name: 'qfs-match', EventPattern: JSON.stringify(ECS_PATTERN) }));
  await eb.send(new PutTargetsCommand({ Rule: 'qfs-match', Targets: [{ Id: 'q', Arn: q.arn }] }));
  // Another operation, another service, and a read-only Describe call: none match.
  const misses = [
    { detail: { eventSource: 'ecs.amazonaws.com', eventName: 'DeleteService', awsRegion: 'eu-west-1' } },
    { detail: { eventSource: 'ec2.amazonaws.com', eventName: 'RunInstances', awsRegion: 'eu-west-1' } },
    { detail: { eventSource: 'ecs.amazonaws.com', eventName: 'RunTask', awsRegion: 'eu-west-1', readOnly: true } },
  ];
  for (const m of misses) {
    const d = await admin(sim, 'POST', '/_sim/events/deliver', m);
    assert.strictEqual(d.body.deliveries.filter((x) => x.target === q.arn).length, 0, JSON.stringify(m));
  }
  const full = {
    version: '0', id: '6a7e8feb-0000-0000-0000-000000000001', 'detail-type': 'AWS API Call via CloudTrail', source: 'aws.ecs',
    account: '111122223333', time: '2026-05-01T10:00:00Z', region: 'eu-west-1', resources: [],
    detail: { eventSource: 'ecs.amazonaws.com', eventName: 'UpdateService', readOnly: false },
  };
  await admin(sim, 'POST', '/_sim/events/deliver', { event: full });
  const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
  assert.strictEqual(r.Messages.length, 1);
  assert.deepStrictEqual(JSON.parse(r.Messages[0].Body), full);
});

test('PutEvents refuses aws.* sources and delivers custom events; InputPath shapes the body', async () => {
  const q = await queueWithArn('qfs-custom');
  await eb.send(new PutRuleCommand({ Name: 'custom', EventPattern: JSON.stringify({ source: [{ prefix: 'qfs.' }], detail: { severity: [{ numeric: ['>=', 4] }] } }) }));
  await eb.send(new PutTargetsCommand({ Rule: 'custom', Targets: [{ Id: 'whole', Arn: q.arn }, { Id: 'detail', Arn: q.arn, InputPath: '$.detail' }] }));
  const out = await eb.send(new PutEventsCommand({
    Entries: [
      { Source: 'aws.ecs', DetailType: 'AWS API Call via CloudTrail', Detail: '{}' },
      { Source: 'qfs.test', DetailType: 'scan', Detail: JSON.stringify({ severity: 5, image: 'web' }) },
      { Source: 'qfs.test', DetailType: 'scan', Detail: JSON.stringify({ severity: 2 }) },
      { Source: 'qfs.test', DetailType: 'scan', Detail: 'not json' },
    ],
  }));
  assert.strictEqual(out.FailedEntryCount, 2);
  assert.strictEqual(out.Entries[0].ErrorCode, 'NotAuthorizedForSourceException');
  assert.ok(out.Entries[1].EventId);
  assert.strictEqual(out.Entries[3].ErrorCode, 'MalformedDetail');
  const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
  const bodies = r.Messages.map((m) => JSON.parse(m.Body));
  assert.strictEqual(bodies.length, 2);
  const whole = bodies.find((b) => b.version === '0');
  assert.strictEqual(whole.id, out.Entries[1].EventId);
  assert.strictEqual(whole.account, '111122223333');
  assert.match(whole.time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
  assert.deepStrictEqual(bodies.find((b) => b.version === undefined), { severity: 5, image: 'web' });
  // RemoveTargets then DeleteRule; DeleteRule with targets left is refused.
  const busy = await rejects(eb.send(new DeleteRuleCommand({ Name: 'custom' })));
  assert.strictEqual(busy.name, 'ValidationException');
  await eb.send(new RemoveTargetsCommand({ Rule: 'custom', Ids: ['whole', 'detail'] }));
  await eb.send(new DeleteRuleCommand({ Name: 'custom' }));
  const gone = await rejects(eb.send(new PutTargetsCommand({ Rule: 'custom', Targets: [{ Id: 'x', Arn: q.arn }] })));
  assert.strictEqual(gone.name, 'ResourceNotFoundException');
  const bad = await rejects(eb.send(new PutRuleCommand({ Name: 'bad', EventPattern: JSON.stringify({ source: 'aws.ecs' }) })));
  assert.strictEqual(bad.name, 'InvalidEventPatternException');
});

test('a spoke rule forwards events one hop to the hub bus, keeping account and region', async () => {
  const hubQueue = await queueWithArn('qfs-hub-events');
  await eb.send(new PutRuleCommand({ Name: 'hub-in', EventPattern: JSON.stringify({ source: ['aws.ecs'] }) }));
  await eb.send(new PutTargetsCommand({ Rule: 'hub-in', Targets: [{ Id: 'q', Arn: hubQueue.arn }] }));
  // The spoke (member account 222233334444, us-east-1) sends its ECS events to the hub's default bus.
  const sts = client(STSClient, sim);
  const c = (await sts.send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::222233334444:role/QfsEcsDescribeRole', RoleSessionName: 'spoke' }))).Credentials;
  sts.destroy();
  const spoke = client(EventBridgeClient, sim, { region: 'us-east-1', credentials: { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken } });
  await spoke.send(new PutRuleCommand({ Name: 'to-hub', EventPattern: JSON.stringify(ECS_PATTERN) }));
  const t = await spoke.send(new PutTargetsCommand({ Rule: 'to-hub', Targets: [{ Id: 'hub', Arn: 'arn:aws:events:eu-west-1:111122223333:event-bus/default' }] }));
  spoke.destroy();
  assert.strictEqual(t.FailedEntryCount, 0);
  const d = await admin(sim, 'POST', '/_sim/events/deliver', {
    account: '222233334444', region: 'us-east-1',
    detail: { eventSource: 'ecs.amazonaws.com', eventName: 'RunTask', responseElements: { tasks: [] } },
  });
  assert.strictEqual(d.body.bus, 'arn:aws:events:us-east-1:222233334444:event-bus/default');
  const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: hubQueue.url, WaitTimeSeconds: 2 }));
  const ev = JSON.parse(r.Messages[0].Body);
  assert.strictEqual(ev.account, '222233334444');
  assert.strictEqual(ev.region, 'us-east-1');
  assert.strictEqual(ev.detail.awsRegion, 'us-east-1');
  assert.strictEqual(ev.detail.recipientAccountId, '222233334444');
});

test('Secrets Manager: create, read, new versions and missing secrets', async () => {
  const created = await sm.send(new CreateSecretCommand({ Name: 'qfs/qualys', SecretString: '{"token":"t1"}' }));
  assert.match(created.ARN, /^arn:aws:secretsmanager:eu-west-1:111122223333:secret:qfs\/qualys-[A-Za-z]{6}$/);
  const v1 = await sm.send(new GetSecretValueCommand({ SecretId: 'qfs/qualys' }));
  assert.strictEqual(v1.SecretString, '{"token":"t1"}');
  assert.deepStrictEqual(v1.VersionStages, ['AWSCURRENT']);
  const put = await sm.send(new PutSecretValueCommand({ SecretId: created.ARN, SecretString: '{"token":"t2"}' }));
  const v2 = await sm.send(new GetSecretValueCommand({ SecretId: created.ARN }));
  assert.strictEqual(v2.SecretString, '{"token":"t2"}');
  assert.strictEqual(v2.VersionId, put.VersionId);
  const prev = await sm.send(new GetSecretValueCommand({ SecretId: 'qfs/qualys', VersionStage: 'AWSPREVIOUS' }));
  assert.strictEqual(prev.SecretString, '{"token":"t1"}');
  const dup = await rejects(sm.send(new CreateSecretCommand({ Name: 'qfs/qualys', SecretString: 'x' })));
  assert.strictEqual(dup.name, 'ResourceExistsException');
  const missing = await rejects(sm.send(new GetSecretValueCommand({ SecretId: 'qfs/absent' })));
  assert.strictEqual(missing.name, 'ResourceNotFoundException');
  assert.strictEqual(missing.message, "Secrets Manager can't find the specified secret.");
  // Secrets seeded through the admin API are read like created ones.
  await admin(sim, 'POST', '/_sim/secrets', { name: 'seeded', secret_string: { user: 'u', password: 'p' } });
  const seeded = await sm.send(new GetSecretValueCommand({ SecretId: 'seeded' }));
  assert.deepStrictEqual(JSON.parse(seeded.SecretString), { user: 'u', password: 'p' });
});
