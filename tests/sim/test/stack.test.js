'use strict';
// Tests of tools/stack: `up` brings nats-server, redis-server, aws-sim and qualys-sim up on loopback
// ports with the AWS resources qfs expects and a sourceable env file; real clients then use what the
// env file names; `down` leaves no process, no listening port and no directory behind.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const net = require('net');
const path = require('path');
const { execFile } = require('child_process');
const { SQSClient, GetQueueUrlCommand, GetQueueAttributesCommand, ReceiveMessageCommand, DeleteMessageCommand } = require('@aws-sdk/client-sqs');
const { SNSClient, GetTopicAttributesCommand } = require('@aws-sdk/client-sns');
const { SecretsManagerClient, GetSecretValueCommand } = require('@aws-sdk/client-secrets-manager');
const { DynamoDBClient, DescribeTableCommand, DescribeTimeToLiveCommand } = require('@aws-sdk/client-dynamodb');
const { EventBridgeClient, DescribeRuleCommand, ListTargetsByRuleCommand } = require('@aws-sdk/client-eventbridge');
const { admin } = require('../aws-sim/testing');
const { request } = require('../qualys-sim/client');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const STACK = path.join(ROOT, 'tools', 'stack');
const PROCS = ['nats', 'redis', 'aws-sim', 'qualys-sim'];

// run executes a program and resolves to {code, stdout, stderr}; it never rejects on exit status.
function run(file, args, env, timeoutMs) {
  return new Promise((resolve) => {
    execFile(file, args, { env: Object.assign({}, process.env, env || {}), timeout: timeoutMs || 30000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

// parseEnvFile reads `export NAME='value'` lines, undoing the '\'' quoting, and fails on any other line.
function parseEnvFile(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^export ([A-Z_][A-Z0-9_]*)=((?:'[^']*'|\\')+)$/.exec(line);
    assert.ok(m, 'env line is not `export NAME=<quoted>`: ' + line);
    out[m[1]] = m[2].replace(/'([^']*)'|\\'/g, (all, inner) => (inner === undefined ? "'" : inner));
  }
  return out;
}

// procGone is true when the pid no longer runs (absent, or a zombie waiting for its reaper).
function procGone(pid) {
  let stat;
  try {
    stat = fs.readFileSync('/proc/' + pid + '/stat', 'utf8');
  } catch (e) {
    return true;
  }
  return stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z';
}

function portOf(url) {
  return Number(new URL(url).port);
}

// firstLine connects to a loopback port, optionally sends a line, and resolves to the first line back.
function firstLine(port, send) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('no answer on port ' + port));
    }, 3000);
    sock.on('connect', () => {
      if (send) sock.write(send);
    });
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      const i = buf.indexOf('\r\n');
      if (i < 0) return;
      clearTimeout(timer);
      sock.destroy();
      resolve(buf.slice(0, i));
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

// listening resolves to true if something accepts connections on the loopback port.
function listening(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.on('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.on('error', () => resolve(false));
  });
}

describe('tools/stack', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qfs-stack-test-'));
  const dir = path.join(tmp, 'stack');
  let env;
  let pids;
  let clients;

  before(async () => {
    const up = await run(STACK, ['up', '--dir', dir]);
    assert.strictEqual(up.code, 0, 'tools/stack up failed:\n' + up.stdout + up.stderr);
    env = parseEnvFile(fs.readFileSync(path.join(dir, 'env'), 'utf8'));
    pids = PROCS.map((name) => Number(fs.readFileSync(path.join(dir, 'pids', name + '.pid'), 'utf8')));
    const opts = {
      endpoint: env.AWS_ENDPOINT_URL,
      region: env.AWS_REGION,
      credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
      maxAttempts: 1,
    };
    clients = {
      sqs: new SQSClient(opts),
      sns: new SNSClient(opts),
      secrets: new SecretsManagerClient(opts),
      ddb: new DynamoDBClient(opts),
      events: new EventBridgeClient(opts),
    };
  });

  after(async () => {
    if (clients) for (const c of Object.values(clients)) c.destroy();
    // Whatever happened above, stop the stack; `down` on a stopped stack is a no-op.
    await run(STACK, ['down', '--dir', dir]);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('writes every variable a qfs service needs, with the fixed values', () => {
    const fixed = {
      QFS_CACHE_BACKEND: 'redis',
      QFS_CACHE_TABLE: 'qfs-cache',
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'AKIAQFSSIMHUB0000001',
      AWS_SECRET_ACCESS_KEY: 'qfs-sim-hub-secret-0000000000000000000001',
      QFS_STACK_DIR: dir,
      QFS_RUN_DIR: path.join(dir, 'run'),
      QFS_ECS_DESCRIBE_ROLE_NAME: 'QfsEcsDescribeRole',
      QFS_ECR_ROLE_NAME: 'QualysEcrScanRole',
      QFS_POLL_INTERVAL_SECONDS: '1',
    };
    for (const [k, v] of Object.entries(fixed)) assert.strictEqual(env[k], v, k);
    for (const k of ['QFS_NATS_URL', 'QFS_REDIS_URL', 'QFS_SQS_QUEUE_URL', 'QFS_SQS_DLQ_URL', 'QFS_SNS_TOPIC_ARN', 'QFS_QUALYS_SECRET_ARN',
      'AWS_ENDPOINT_URL', 'QUALYS_GATEWAY_URL', 'QFS_SIM_QUALYS_USERNAME', 'QFS_SIM_QUALYS_PASSWORD', 'QFS_SIM_AWS_URL', 'QFS_SIM_QUALYS_URL', 'QFS_NATS_MONITOR_URL']) {
      assert.ok(env[k], k + ' is set');
    }
    assert.match(env.QFS_NATS_URL, /^nats:\/\/127\.0\.0\.1:\d+$/);
    assert.match(env.QFS_REDIS_URL, /^redis:\/\/127\.0\.0\.1:\d+$/);
    assert.strictEqual(env.AWS_ENDPOINT_URL, env.QFS_SIM_AWS_URL);
    assert.strictEqual(env.QUALYS_GATEWAY_URL, env.QFS_SIM_QUALYS_URL);
    assert.ok(fs.statSync(env.QFS_RUN_DIR).isDirectory());
  });

  it('creates the event queue with a redrive policy to its DLQ', async () => {
    const url = (await clients.sqs.send(new GetQueueUrlCommand({ QueueName: 'qfs-events' }))).QueueUrl;
    assert.strictEqual(url, env.QFS_SQS_QUEUE_URL);
    const dlqUrl = (await clients.sqs.send(new GetQueueUrlCommand({ QueueName: 'qfs-events-dlq' }))).QueueUrl;
    assert.strictEqual(dlqUrl, env.QFS_SQS_DLQ_URL);
    const dlqArn = (await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))).Attributes.QueueArn;
    const attrs = (await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['RedrivePolicy', 'Policy'] }))).Attributes;
    assert.deepStrictEqual(JSON.parse(attrs.RedrivePolicy), { deadLetterTargetArn: dlqArn, maxReceiveCount: 5 });
    assert.strictEqual(JSON.parse(attrs.Policy).Statement[0].Principal.Service, 'events.amazonaws.com');
  });

  it('routes ECS deploy events to the queue with the pattern of deploy/event-patterns.json, and nothing else', async () => {
    const rule = await clients.events.send(new DescribeRuleCommand({ Name: 'qfs-ecs-events' }));
    const file = JSON.parse(fs.readFileSync(path.join(ROOT, 'deploy', 'event-patterns.json'), 'utf8'));
    assert.deepStrictEqual(JSON.parse(rule.EventPattern), file);
    assert.strictEqual(rule.State, 'ENABLED');
    const targets = (await clients.events.send(new ListTargetsByRuleCommand({ Rule: 'qfs-ecs-events' }))).Targets;
    const queueArn = (await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: env.QFS_SQS_QUEUE_URL, AttributeNames: ['QueueArn'] }))).Attributes.QueueArn;
    assert.deepStrictEqual(targets.map((t) => t.Arn), [queueArn]);

    const sim = { url: env.QFS_SIM_AWS_URL };
    const deliver = async (body) => {
      const r = await admin(sim, 'POST', '/_sim/events/deliver', body);
      assert.strictEqual(r.status, 200, JSON.stringify(r.body));
      return r.body;
    };
    const wanted = [];
    for (const eventName of ['RegisterTaskDefinition', 'RunTask', 'UpdateService']) {
      const d = await deliver({ detail: { eventName, eventSource: 'ecs.amazonaws.com', requestParameters: { taskDefinition: 'web:42' } } });
      assert.strictEqual(d.deliveries.length, 1, eventName + ' is delivered');
      wanted.push(d.event.id);
    }
    const state = await deliver({
      event: {
        'detail-type': 'ECS Task State Change',
        source: 'aws.ecs',
        detail: { lastStatus: 'RUNNING', desiredStatus: 'RUNNING', taskDefinitionArn: 'arn:aws:ecs:eu-west-1:111122223333:task-definition/web:42', containers: [] },
      },
    });
    assert.strictEqual(state.deliveries.length, 1, 'a task state change is delivered');
    wanted.push(state.event.id);
    // A read-only call, a mutating call qfs does not handle, and another service's event stay out.
    const unwanted = [
      { detail: { eventName: 'DescribeTaskDefinition', eventSource: 'ecs.amazonaws.com', readOnly: true, requestParameters: { taskDefinition: 'web:42' } } },
      { detail: { eventName: 'DeregisterTaskDefinition', eventSource: 'ecs.amazonaws.com', requestParameters: { taskDefinition: 'web:41' } } },
      { detail: { eventName: 'RunInstances', eventSource: 'ec2.amazonaws.com' } },
    ];
    for (const body of unwanted) {
      const d = await deliver(body);
      assert.strictEqual(d.deliveries.length, 0, body.detail.eventName + ' is not delivered');
    }

    const got = [];
    const deadline = Date.now() + 5000;
    while (got.length < wanted.length && Date.now() < deadline) {
      const r = await clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: env.QFS_SQS_QUEUE_URL, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      for (const m of r.Messages || []) {
        got.push(JSON.parse(m.Body).id);
        await clients.sqs.send(new DeleteMessageCommand({ QueueUrl: env.QFS_SQS_QUEUE_URL, ReceiptHandle: m.ReceiptHandle }));
      }
    }
    assert.deepStrictEqual(got.sort(), wanted.slice().sort());
    const rest = await clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: env.QFS_SQS_QUEUE_URL, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    assert.deepStrictEqual(rest.Messages || [], []);
  });

  it('creates the SNS topic, the Qualys secret and the cache table with TTL', async () => {
    const topic = await clients.sns.send(new GetTopicAttributesCommand({ TopicArn: env.QFS_SNS_TOPIC_ARN }));
    assert.strictEqual(topic.Attributes.TopicArn, env.QFS_SNS_TOPIC_ARN);
    assert.match(env.QFS_SNS_TOPIC_ARN, /:qfs-notifications$/);

    const secret = await clients.secrets.send(new GetSecretValueCommand({ SecretId: env.QFS_QUALYS_SECRET_ARN }));
    assert.strictEqual(secret.Name, 'qfs/qualys');
    assert.deepStrictEqual(JSON.parse(secret.SecretString), { username: env.QFS_SIM_QUALYS_USERNAME, password: env.QFS_SIM_QUALYS_PASSWORD });

    const table = (await clients.ddb.send(new DescribeTableCommand({ TableName: 'qfs-cache' }))).Table;
    assert.strictEqual(table.TableStatus, 'ACTIVE');
    assert.deepStrictEqual(table.KeySchema, [{ AttributeName: 'pk', KeyType: 'HASH' }]);
    assert.deepStrictEqual(table.AttributeDefinitions, [{ AttributeName: 'pk', AttributeType: 'S' }]);
    assert.strictEqual(table.BillingModeSummary && table.BillingModeSummary.BillingMode, 'PAY_PER_REQUEST');
    const ttl = (await clients.ddb.send(new DescribeTimeToLiveCommand({ TableName: 'qfs-cache' }))).TimeToLiveDescription;
    assert.deepStrictEqual(ttl, { TimeToLiveStatus: 'ENABLED', AttributeName: 'ttl' });
  });

  it('bootstraps idempotently: a second run reports the same resources', async () => {
    // The bootstrap takes the simulator's Qualys login as tools/stack hands it over.
    const again = await run(process.execPath, [path.join(ROOT, 'tools', 'stack-bootstrap.js')],
      Object.assign({}, env, { QUALYS_USERNAME: env.QFS_SIM_QUALYS_USERNAME, QUALYS_PASSWORD: env.QFS_SIM_QUALYS_PASSWORD }));
    assert.strictEqual(again.code, 0, again.stderr);
    const lines = Object.fromEntries(again.stdout.trim().split('\n').map((l) => l.split('\t')));
    for (const k of ['QFS_SQS_QUEUE_URL', 'QFS_SQS_DLQ_URL', 'QFS_SNS_TOPIC_ARN', 'QFS_QUALYS_SECRET_ARN']) assert.strictEqual(lines[k], env[k], k);
  });

  it('serves redis, NATS with JetStream, and qualys-sim with the env credentials', async () => {
    assert.strictEqual(await firstLine(portOf(env.QFS_REDIS_URL), 'PING\r\n'), '+PONG');
    const info = await firstLine(portOf(env.QFS_NATS_URL));
    assert.match(info, /^INFO /);
    assert.strictEqual(JSON.parse(info.slice(5)).jetstream, true);
    const health = await request(env.QFS_NATS_MONITOR_URL, { path: '/healthz' });
    assert.strictEqual(health.status, 200);
    const auth = await request(env.QUALYS_GATEWAY_URL, {
      method: 'POST', path: '/auth', form: { username: env.QFS_SIM_QUALYS_USERNAME, password: env.QFS_SIM_QUALYS_PASSWORD, token: 'true' },
    });
    assert.strictEqual(auth.status, 201);
    assert.strictEqual(auth.text.split('.').length, 3, 'a JWT');
  });

  it('reports status, and refuses a second up on the same dir', async () => {
    const status = await run(STACK, ['status', '--dir', dir]);
    assert.strictEqual(status.code, 0, status.stdout + status.stderr);
    for (const name of PROCS) assert.match(status.stdout, new RegExp('^' + name + ' +pid \\d+ .* up$', 'm'));
    const again = await run(STACK, ['up', '--dir', dir]);
    assert.notStrictEqual(again.code, 0);
    assert.match(again.stderr, /already running/);
    assert.ok(pids.every((pid) => !procGone(pid)), 'the refused up left the running stack alone');
  });

  it('down stops every process, frees every port and removes the dir; a second down is fine', async () => {
    const ports = [env.QFS_NATS_URL, env.QFS_NATS_MONITOR_URL, env.QFS_REDIS_URL, env.QFS_SIM_AWS_URL, env.QFS_SIM_QUALYS_URL].map(portOf);
    const down = await run(STACK, ['down', '--dir', dir]);
    assert.strictEqual(down.code, 0, down.stdout + down.stderr);
    for (let i = 0; i < pids.length; i++) assert.ok(procGone(pids[i]), PROCS[i] + ' (pid ' + pids[i] + ') is gone');
    for (const port of ports) assert.strictEqual(await listening(port), false, 'port ' + port + ' is closed');
    assert.strictEqual(fs.existsSync(dir), false, 'the stack dir is removed');
    const twice = await run(STACK, ['down', '--dir', dir]);
    assert.strictEqual(twice.code, 0, twice.stderr);
    const status = await run(STACK, ['status', '--dir', dir]);
    assert.notStrictEqual(status.code, 0);
  });
});
