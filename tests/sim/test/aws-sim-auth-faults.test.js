'use strict';
// Contract tests of aws-sim's identity checks and fault injection: SigV4 failures as the real SDK
// clients see them, session tokens, container credentials, requests signed by curl 7.88 the way
// libcurl signs them, and injected faults.

const test = require('node:test');
const assert = require('node:assert');
const { execFile } = require('child_process');
const { SQSClient, CreateQueueCommand, SendMessageCommand, ListQueuesCommand } = require('@aws-sdk/client-sqs');
const { SNSClient, CreateTopicCommand, PublishCommand } = require('@aws-sdk/client-sns');
const { STSClient, AssumeRoleCommand, GetCallerIdentityCommand } = require('@aws-sdk/client-sts');
const { ECSClient, DescribeTaskDefinitionCommand } = require('@aws-sdk/client-ecs');
const { DynamoDBClient, ListTablesCommand } = require('@aws-sdk/client-dynamodb');
const { startSim, client, admin, rawRequest, rejects, HUB_CREDENTIALS } = require('../aws-sim/testing');

const WEB = 'arn:aws:ecs:eu-west-1:111122223333:task-definition/web:42';
const MEMBER_ROLE = 'arn:aws:iam::222233334444:role/QfsEcsDescribeRole';

let sim;
const clients = [];
function mk(Cls, opts) {
  const c = client(Cls, sim, opts);
  clients.push(c);
  return c;
}

function curl(args) {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '-v', '--max-time', '10'].concat(args), { encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

test.before(async () => {
  sim = await startSim();
});

test.after(async () => {
  for (const c of clients) c.destroy();
  await sim.close();
});

test('a request signed with the wrong secret is refused, in each protocol family', async () => {
  const wrong = { accessKeyId: HUB_CREDENTIALS.accessKeyId, secretAccessKey: 'not-the-secret' };
  const ecs = await rejects(mk(ECSClient, { credentials: wrong }).send(new DescribeTaskDefinitionCommand({ taskDefinition: WEB })));
  assert.strictEqual(ecs.name, 'InvalidSignatureException');
  assert.strictEqual(ecs.$metadata.httpStatusCode, 400);
  assert.match(ecs.message, /^The request signature we calculated does not match the signature you provided/);
  const sqs = await rejects(mk(SQSClient, { credentials: wrong }).send(new ListQueuesCommand({})));
  assert.strictEqual(sqs.name, 'SignatureDoesNotMatch');
  assert.strictEqual(sqs.$metadata.httpStatusCode, 403);
  const sts = await rejects(mk(STSClient, { credentials: wrong }).send(new GetCallerIdentityCommand({})));
  assert.strictEqual(sts.name, 'SignatureDoesNotMatch');
  assert.strictEqual(sts.$metadata.httpStatusCode, 403);
  const unknown = { accessKeyId: 'AKIAUNKNOWNUNKNOWN00', secretAccessKey: 'x' };
  const u1 = await rejects(mk(ECSClient, { credentials: unknown }).send(new DescribeTaskDefinitionCommand({ taskDefinition: WEB })));
  assert.strictEqual(u1.name, 'UnrecognizedClientException');
  const u2 = await rejects(mk(SNSClient, { credentials: unknown }).send(new CreateTopicCommand({ Name: 't' })));
  assert.strictEqual(u2.name, 'InvalidClientTokenId');
});

test('a skewed clock is refused; with retries the SDK corrects its clock from the Date header', async () => {
  const skewed = { systemClockOffset: -30 * 60 * 1000 };
  const e = await rejects(mk(ECSClient, skewed).send(new DescribeTaskDefinitionCommand({ taskDefinition: WEB })));
  assert.strictEqual(e.name, 'InvalidSignatureException');
  assert.match(e.message, /^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 15 min\.\)$/);
  const future = await rejects(mk(STSClient, { systemClockOffset: 20 * 60 * 1000 }).send(new GetCallerIdentityCommand({})));
  assert.strictEqual(future.name, 'SignatureDoesNotMatch');
  assert.match(future.message, /^Signature not yet current/);
  const recovering = mk(ECSClient, Object.assign({ maxAttempts: 3 }, skewed));
  const ok = await recovering.send(new DescribeTaskDefinitionCommand({ taskDefinition: WEB }));
  assert.strictEqual(ok.$metadata.attempts, 2);
});

test('an unsigned request is refused', async () => {
  const r = await rawRequest(sim, {
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition' },
  }, JSON.stringify({ taskDefinition: WEB }));
  assert.strictEqual(r.status, 400);
  assert.deepStrictEqual(JSON.parse(r.body), { __type: 'com.amazon.coral.service#MissingAuthenticationTokenException', message: 'Request is missing Authentication Token' });
  const q = await rawRequest(sim, { headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 'Action=GetCallerIdentity&Version=2011-06-15');
  assert.strictEqual(q.status, 403);
  assert.match(q.body, /<Code>MissingAuthenticationToken<\/Code>/);
});

test('temporary credentials need their session token and expire', async () => {
  const sts = mk(STSClient);
  const c = (await sts.send(new AssumeRoleCommand({ RoleArn: MEMBER_ROLE, RoleSessionName: 'tok' }))).Credentials;
  const good = { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken };
  const noToken = { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey };
  const e1 = await rejects(mk(STSClient, { credentials: noToken }).send(new GetCallerIdentityCommand({})));
  assert.strictEqual(e1.name, 'InvalidClientTokenId');
  assert.strictEqual(e1.message, 'The security token included in the request is invalid.');
  const e2 = await rejects(mk(ECSClient, { credentials: Object.assign({}, good, { sessionToken: 'forged' }) }).send(new DescribeTaskDefinitionCommand({ taskDefinition: 'x' })));
  assert.strictEqual(e2.name, 'UnrecognizedClientException');
  // A long-term key must not carry a token.
  const e3 = await rejects(mk(SQSClient, { credentials: Object.assign({}, HUB_CREDENTIALS, { sessionToken: 'x' }) }).send(new ListQueuesCommand({})));
  assert.strictEqual(e3.name, 'InvalidClientTokenId');
  const who = await mk(STSClient, { credentials: good }).send(new GetCallerIdentityCommand({}));
  assert.strictEqual(who.Account, '222233334444');
  const expired = await admin(sim, 'POST', '/_sim/credentials/expire', { access_key_id: c.AccessKeyId });
  assert.strictEqual(expired.status, 200);
  const e4 = await rejects(mk(STSClient, { credentials: good }).send(new GetCallerIdentityCommand({})));
  assert.strictEqual(e4.name, 'ExpiredToken');
  assert.strictEqual(e4.$metadata.httpStatusCode, 403);
  const e5 = await rejects(mk(ECSClient, { credentials: good }).send(new DescribeTaskDefinitionCommand({ taskDefinition: 'x' })));
  assert.strictEqual(e5.name, 'ExpiredTokenException');
});

test('the container credentials endpoint hands out the task role and honours a set expiry', async () => {
  const r = await rawRequest(sim, { method: 'GET', path: '/v2/credentials/4a2b7c9e-task' });
  assert.strictEqual(r.status, 200);
  const c = JSON.parse(r.body);
  assert.deepStrictEqual(Object.keys(c).sort(), ['AccessKeyId', 'Expiration', 'RoleArn', 'SecretAccessKey', 'Token']);
  assert.match(c.AccessKeyId, /^ASIA/);
  assert.strictEqual(c.RoleArn, 'arn:aws:iam::111122223333:role/QfsTaskRole');
  const left = Date.parse(c.Expiration) - Date.now();
  assert.ok(left > 5.9 * 3600 * 1000 && left <= 6 * 3600 * 1000);
  const creds = { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.Token };
  const who = await mk(STSClient, { credentials: creds }).send(new GetCallerIdentityCommand({}));
  assert.strictEqual(who.Account, '111122223333');
  assert.match(who.Arn, /^arn:aws:sts::111122223333:assumed-role\/QfsTaskRole\//);
  // Set the expiry close: the same keys are returned with the new Expiration.
  await admin(sim, 'POST', '/_sim/container-credentials', { expires_in_seconds: 120 });
  const soon = JSON.parse((await rawRequest(sim, { method: 'GET', path: '/v2/credentials/4a2b7c9e-task' })).body);
  assert.strictEqual(soon.AccessKeyId, c.AccessKeyId);
  assert.ok(Date.parse(soon.Expiration) - Date.now() <= 120000);
  // Once expired, the old keys are refused and the endpoint hands out new ones.
  await admin(sim, 'POST', '/_sim/container-credentials', { expires_in_seconds: -1 });
  const e = await rejects(mk(STSClient, { credentials: creds }).send(new GetCallerIdentityCommand({})));
  assert.strictEqual(e.name, 'ExpiredToken');
  const fresh = JSON.parse((await rawRequest(sim, { method: 'GET', path: '/v2/credentials/4a2b7c9e-task' })).body);
  assert.notStrictEqual(fresh.AccessKeyId, c.AccessKeyId);
  const who2 = await mk(STSClient, { credentials: { accessKeyId: fresh.AccessKeyId, secretAccessKey: fresh.SecretAccessKey, sessionToken: fresh.Token } })
    .send(new GetCallerIdentityCommand({}));
  assert.strictEqual(who2.Account, '111122223333');
  // The endpoint can fail like the agent can, through a fault on service "credentials".
  await admin(sim, 'POST', '/_sim/faults', { service: 'credentials', type: 'InternalError', status: 500, count: 1 });
  const failing = await rawRequest(sim, { method: 'GET', path: '/v2/credentials/4a2b7c9e-task' });
  assert.strictEqual(failing.status, 500);
  assert.strictEqual(JSON.parse(failing.body).code, 'InternalError');
  // The SDK's own container-credentials provider (AWS_CONTAINER_CREDENTIALS_FULL_URI) reads the endpoint.
  const { fromHttp } = require('@aws-sdk/credential-provider-http');
  const viaProvider = mk(STSClient, { credentials: fromHttp({ awsContainerCredentialsFullUri: sim.url + '/v2/credentials/task' }) });
  const who3 = await viaProvider.send(new GetCallerIdentityCommand({}));
  assert.match(who3.Arn, /^arn:aws:sts::111122223333:assumed-role\/QfsTaskRole\//);
});

test('curl 7.88 --aws-sigv4 is accepted; a header signed but not sent is refused', async () => {
  const user = HUB_CREDENTIALS.accessKeyId + ':' + HUB_CREDENTIALS.secretAccessKey;
  const base = ['--aws-sigv4', 'aws:amz:eu-west-1:sqs', '--user', user, '-H', 'Content-Type: application/x-amz-json-1.0',
    '-H', 'X-Amz-Target: AmazonSQS.CreateQueue', '--data-binary', '{"QueueName":"from-curl"}', sim.url + '/'];
  const ok = await curl(base);
  assert.strictEqual(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /SignedHeaders=content-type;host;x-amz-date;x-amz-target,/);
  assert.ok(!/SignedHeaders=[^,]*content-length/.test(ok.stderr));
  assert.deepStrictEqual(JSON.parse(ok.stdout), { QueueUrl: sim.url + '/111122223333/from-curl' });
  // curl 7.88 signs a removal header ("Accept:") that it then does not send (curl#11664).
  const bad = await curl(['-H', 'Accept:'].concat(base));
  assert.match(bad.stderr, /SignedHeaders=accept;content-type;host;x-amz-date;x-amz-target,/);
  assert.match(bad.stderr, /< HTTP\/1.1 400/);
  const body = JSON.parse(bad.stdout);
  assert.strictEqual(body.__type, 'com.amazon.coral.service#IncompleteSignatureException');
  assert.match(body.message, /'accept' is named as a SignedHeader, but it does not exist/);
  // Temporary credentials: curl signs the X-Amz-Security-Token header given in the header list.
  const sts = mk(STSClient);
  const c = (await sts.send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::111122223333:role/QfsEcsDescribeRole', RoleSessionName: 'curl' }))).Credentials;
  const withToken = await curl(['--aws-sigv4', 'aws:amz:eu-west-1:ecs', '--user', c.AccessKeyId + ':' + c.SecretAccessKey,
    '-H', 'Content-Type: application/x-amz-json-1.1', '-H', 'X-Amz-Target: AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition',
    '-H', 'X-Amz-Security-Token: ' + c.SessionToken, '--data-binary', JSON.stringify({ taskDefinition: WEB }), sim.url + '/']);
  assert.match(withToken.stderr, /SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target,/);
  assert.strictEqual(JSON.parse(withToken.stdout).taskDefinition.taskDefinitionArn, WEB);
  // A query-protocol GET with the parameters already sorted, as aws-wire.md §2.9.4 recommends.
  const get = await curl(['--aws-sigv4', 'aws:amz:eu-west-1:sts', '--user', user, sim.url + '/?Action=GetCallerIdentity&Version=2011-06-15']);
  assert.match(get.stdout, /<Account>111122223333<\/Account>/);
});

test('injected faults reach the SDK as the right errors, and the call log shows them', async () => {
  const sqs = mk(SQSClient);
  const url = (await sqs.send(new CreateQueueCommand({ QueueName: 'faulty' }))).QueueUrl;
  await admin(sim, 'POST', '/_sim/faults', { service: 'sqs', operation: 'SendMessage', type: 'ServiceUnavailable', count: 1 });
  const e1 = await rejects(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x' })));
  assert.strictEqual(e1.name, 'ServiceUnavailable');
  assert.strictEqual(e1.$metadata.httpStatusCode, 503);
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x' }));

  await admin(sim, 'POST', '/_sim/faults', { service: 'ecs', type: 'ThrottlingException', count: 2 });
  const retrying = mk(ECSClient, { maxAttempts: 3 });
  const ok = await retrying.send(new DescribeTaskDefinitionCommand({ taskDefinition: WEB }));
  assert.strictEqual(ok.$metadata.attempts, 3);

  await admin(sim, 'POST', '/_sim/faults', { service: 'dynamodb', type: 'ProvisionedThroughputExceededException', count: 1 });
  const ddbErr = await rejects(mk(DynamoDBClient).send(new ListTablesCommand({})));
  assert.strictEqual(ddbErr.name, 'ProvisionedThroughputExceededException');

  const sns = mk(SNSClient);
  const topic = (await sns.send(new CreateTopicCommand({ Name: 'faulty' }))).TopicArn;
  await admin(sim, 'POST', '/_sim/faults', { service: 'sns', operation: 'Publish', type: 'InternalFailure', count: 1 });
  const snsErr = await rejects(sns.send(new PublishCommand({ TopicArn: topic, Message: 'm' })));
  assert.strictEqual(snsErr.name, 'InternalFailure');
  assert.strictEqual(snsErr.$metadata.httpStatusCode, 500);

  await admin(sim, 'POST', '/_sim/faults', { service: 'sts', latency_ms: 300, count: 1 });
  const t0 = Date.now();
  await mk(STSClient).send(new GetCallerIdentityCommand({}));
  assert.ok(Date.now() - t0 >= 280);

  await admin(sim, 'POST', '/_sim/faults', { service: 'sts', reset: true, count: 1 });
  const reset = await rejects(mk(STSClient).send(new GetCallerIdentityCommand({})));
  assert.match(String(reset.code || reset.name || reset.message), /ECONNRESET|socket hang up|TimeoutError|Error/);

  await admin(sim, 'POST', '/_sim/faults', { service: 'ecs', type: 'ThrottlingException', rate: 1 });
  assert.strictEqual((await admin(sim, 'GET', '/_sim/faults')).body.faults.length, 1);
  await admin(sim, 'DELETE', '/_sim/faults');
  await mk(ECSClient).send(new DescribeTaskDefinitionCommand({ taskDefinition: WEB }));

  const log = (await admin(sim, 'GET', '/_sim/calls?service=sqs&operation=SendMessage')).body;
  assert.deepStrictEqual(log.calls.map((c) => c.status), [503, 200]);
  assert.strictEqual(log.calls[0].error, 'ServiceUnavailable');
  assert.ok(log.calls[0].fault);
  assert.strictEqual(log.calls[1].account, '111122223333');
  const ecsCalls = (await admin(sim, 'GET', '/_sim/calls?service=ecs')).body.calls;
  assert.strictEqual(ecsCalls.filter((c) => c.fault && c.error === 'ThrottlingException').length, 2);
  assert.ok(log.counts.ecs.DescribeTaskDefinition['400'] >= 2);

  // Reset drops queues, faults and calls but keeps the seed.
  await admin(sim, 'POST', '/_sim/reset');
  const after = await sqs.send(new ListQueuesCommand({}));
  assert.strictEqual(after.QueueUrls, undefined);
  assert.strictEqual((await admin(sim, 'GET', '/_sim/calls')).body.calls.length, 1);
  await mk(ECSClient).send(new DescribeTaskDefinitionCommand({ taskDefinition: WEB }));
});
