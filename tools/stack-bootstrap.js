#!/usr/bin/env node
'use strict';
// stack-bootstrap: creates the AWS resources a local qfs stack needs, with the real AWS SDK v3
// clients, in the AWS endpoint the environment names (aws-sim): the event queue and its DLQ, the
// EventBridge rule that feeds it (deploy/event-patterns.json), the SNS topic, the DynamoDB cache
// table with TTL, and the Qualys credentials secret. Running it again changes nothing.
//
// Reads AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, QUALYS_USERNAME and
// QUALYS_PASSWORD. Prints what it created as "NAME<TAB>VALUE" lines on stdout (the QFS_* variables
// tools/stack writes to the stack's env file); progress and errors go to stderr.

const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const ROOT = path.resolve(__dirname, '..');
// The SDK clients are installed with the simulators' test tooling, not at the repository root.
const simRequire = createRequire(path.join(ROOT, 'tests', 'sim', 'package.json'));
const sqs = simRequire('@aws-sdk/client-sqs');
const sns = simRequire('@aws-sdk/client-sns');
const events = simRequire('@aws-sdk/client-eventbridge');
const ddb = simRequire('@aws-sdk/client-dynamodb');
const secrets = simRequire('@aws-sdk/client-secrets-manager');

const PATTERN_FILE = path.join(ROOT, 'deploy', 'event-patterns.json');
const NAMES = {
  queue: 'qfs-events',
  dlq: 'qfs-events-dlq',
  rule: 'qfs-ecs-events',
  target: 'qfs-events-queue',
  topic: 'qfs-notifications',
  table: 'qfs-cache',
  tableKey: 'pk',
  ttlAttribute: 'ttl',
  secret: 'qfs/qualys',
};
const MAX_RECEIVE_COUNT = 5;
// Failed messages stay in the DLQ for the SQS maximum, 14 days, so an operator can look at them.
const DLQ_RETENTION_SECONDS = 1209600;
const DEADLINE_MS = 30000;
const TABLE_ACTIVE_MS = 10000;

function log(msg) {
  process.stderr.write('stack-bootstrap: ' + msg + '\n');
}

function fail(msg, status) {
  log(msg);
  process.exit(status || 1);
}

// config reads the environment, naming every variable that is missing.
function config() {
  const want = ['AWS_ENDPOINT_URL', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'QUALYS_USERNAME', 'QUALYS_PASSWORD'];
  const missing = want.filter((k) => !process.env[k]);
  if (missing.length) fail('missing environment variable(s): ' + missing.join(', '), 2);
  return {
    endpoint: process.env.AWS_ENDPOINT_URL,
    region: process.env.AWS_REGION,
    credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY },
    qualys: { username: process.env.QUALYS_USERNAME, password: process.env.QUALYS_PASSWORD },
  };
}

function readPattern() {
  let text;
  try {
    text = fs.readFileSync(PATTERN_FILE, 'utf8');
    // Compact, as the EventBridge API echoes it back; the file itself stays readable.
    return JSON.stringify(JSON.parse(text));
  } catch (e) {
    return fail('cannot read the event pattern ' + PATTERN_FILE + ': ' + e.message);
  }
}

async function queueArn(client, url) {
  const out = await client.send(new sqs.GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
  return out.Attributes.QueueArn;
}

// queuePolicy lets EventBridge deliver to the queue, from this rule only, as AWS requires.
function queuePolicy(qArn, ruleArn) {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [{
      Sid: 'AllowEventBridgeRule',
      Effect: 'Allow',
      Principal: { Service: 'events.amazonaws.com' },
      Action: 'sqs:SendMessage',
      Resource: qArn,
      Condition: { ArnEquals: { 'aws:SourceArn': ruleArn } },
    }],
  });
}

// queues creates the DLQ and the event queue; attributes are set afterwards, so that a rerun with
// different values updates them instead of failing with QueueNameExists.
async function queues(client) {
  const dlqUrl = (await client.send(new sqs.CreateQueueCommand({ QueueName: NAMES.dlq }))).QueueUrl;
  const dlqArn = await queueArn(client, dlqUrl);
  await client.send(new sqs.SetQueueAttributesCommand({
    QueueUrl: dlqUrl, Attributes: { MessageRetentionPeriod: String(DLQ_RETENTION_SECONDS) },
  }));
  const url = (await client.send(new sqs.CreateQueueCommand({ QueueName: NAMES.queue }))).QueueUrl;
  const arn = await queueArn(client, url);
  return { url, arn, dlqUrl, dlqArn };
}

async function queueAttributes(client, q, ruleArn) {
  await client.send(new sqs.SetQueueAttributesCommand({
    QueueUrl: q.url,
    Attributes: {
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: q.dlqArn, maxReceiveCount: MAX_RECEIVE_COUNT }),
      Policy: queuePolicy(q.arn, ruleArn),
    },
  }));
}

async function rule(client, pattern) {
  const out = await client.send(new events.PutRuleCommand({
    Name: NAMES.rule,
    EventBusName: 'default',
    EventPattern: pattern,
    State: 'ENABLED',
    Description: 'ECS deploy events that qfs scans (deploy/event-patterns.json)',
  }));
  return out.RuleArn;
}

async function ruleTarget(client, qArn) {
  const out = await client.send(new events.PutTargetsCommand({
    Rule: NAMES.rule,
    EventBusName: 'default',
    Targets: [{ Id: NAMES.target, Arn: qArn }],
  }));
  if (out.FailedEntryCount) {
    const f = out.FailedEntries[0];
    throw new Error('PutTargets refused ' + f.TargetId + ': ' + f.ErrorCode + ' ' + f.ErrorMessage);
  }
}

async function topic(client) {
  return (await client.send(new sns.CreateTopicCommand({ Name: NAMES.topic }))).TopicArn;
}

async function table(client) {
  try {
    await client.send(new ddb.CreateTableCommand({
      TableName: NAMES.table,
      AttributeDefinitions: [{ AttributeName: NAMES.tableKey, AttributeType: 'S' }],
      KeySchema: [{ AttributeName: NAMES.tableKey, KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }));
  } catch (e) {
    if (e.name !== 'ResourceInUseException') throw e;
  }
  const deadline = Date.now() + TABLE_ACTIVE_MS;
  for (;;) {
    const t = (await client.send(new ddb.DescribeTableCommand({ TableName: NAMES.table }))).Table;
    if (t.TableStatus === 'ACTIVE') break;
    if (Date.now() > deadline) throw new Error('table ' + NAMES.table + ' is still ' + t.TableStatus);
    await new Promise((r) => setTimeout(r, 100));
  }
  const ttl = (await client.send(new ddb.DescribeTimeToLiveCommand({ TableName: NAMES.table }))).TimeToLiveDescription || {};
  const on = ttl.TimeToLiveStatus === 'ENABLED' || ttl.TimeToLiveStatus === 'ENABLING';
  if (on && ttl.AttributeName === NAMES.ttlAttribute) return;
  // DynamoDB refuses to enable TTL twice, or on another attribute while it is on; say so plainly.
  if (on) throw new Error('table ' + NAMES.table + ' has TTL on attribute ' + ttl.AttributeName + ', not ' + NAMES.ttlAttribute);
  await client.send(new ddb.UpdateTimeToLiveCommand({
    TableName: NAMES.table,
    TimeToLiveSpecification: { Enabled: true, AttributeName: NAMES.ttlAttribute },
  }));
}

// secret stores the Qualys credentials; on a rerun it adds a version only if they changed.
async function secret(client, qualys) {
  const value = JSON.stringify({ username: qualys.username, password: qualys.password });
  try {
    return (await client.send(new secrets.CreateSecretCommand({
      Name: NAMES.secret,
      SecretString: value,
      Description: 'Qualys Container Security credentials for qfs (local stack)',
    }))).ARN;
  } catch (e) {
    if (e.name !== 'ResourceExistsException') throw e;
  }
  const current = await client.send(new secrets.GetSecretValueCommand({ SecretId: NAMES.secret }));
  if (current.SecretString === value) return current.ARN;
  return (await client.send(new secrets.PutSecretValueCommand({ SecretId: NAMES.secret, SecretString: value }))).ARN;
}

async function main() {
  const cfg = config();
  const pattern = readPattern();
  const opts = { endpoint: cfg.endpoint, region: cfg.region, credentials: cfg.credentials, maxAttempts: 3 };
  const clients = {
    sqs: new sqs.SQSClient(opts),
    events: new events.EventBridgeClient(opts),
    sns: new sns.SNSClient(opts),
    ddb: new ddb.DynamoDBClient(opts),
    secrets: new secrets.SecretsManagerClient(opts),
  };
  const out = {};
  try {
    const q = await queues(clients.sqs);
    const ruleArn = await rule(clients.events, pattern);
    await queueAttributes(clients.sqs, q, ruleArn);
    await ruleTarget(clients.events, q.arn);
    log('queue ' + NAMES.queue + ' (DLQ ' + NAMES.dlq + ' after ' + MAX_RECEIVE_COUNT + ' receives), fed by rule ' + ruleArn);
    out.QFS_SQS_QUEUE_URL = q.url;
    out.QFS_SQS_DLQ_URL = q.dlqUrl;
    out.QFS_SNS_TOPIC_ARN = await topic(clients.sns);
    log('topic ' + out.QFS_SNS_TOPIC_ARN);
    await table(clients.ddb);
    log('table ' + NAMES.table + ' (key ' + NAMES.tableKey + ', on-demand, TTL on ' + NAMES.ttlAttribute + ')');
    out.QFS_QUALYS_SECRET_ARN = await secret(clients.secrets, cfg.qualys);
    log('secret ' + out.QFS_QUALYS_SECRET_ARN);
  } finally {
    for (const c of Object.values(clients)) c.destroy();
  }
  for (const [k, v] of Object.entries(out)) process.stdout.write(k + '\t' + v + '\n');
}

setTimeout(() => fail('gave up after ' + DEADLINE_MS / 1000 + ' s; is ' + process.env.AWS_ENDPOINT_URL + ' answering?'), DEADLINE_MS).unref();
main().catch((e) => fail((e.name && e.name !== 'Error' ? e.name + ': ' : '') + e.message));
