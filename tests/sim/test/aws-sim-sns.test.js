'use strict';
// Contract tests of aws-sim's SNS (query protocol) against the real AWS SDK v3 SNS client.

const test = require('node:test');
const assert = require('node:assert');
const { SNSClient, CreateTopicCommand, PublishCommand } = require('@aws-sdk/client-sns');
const { startSim, client, admin, rejects } = require('../aws-sim/testing');

let sim;
let sns;
let topicArn;

test.before(async () => {
  sim = await startSim();
  sns = client(SNSClient, sim);
  topicArn = (await sns.send(new CreateTopicCommand({ Name: 'qfs-notifications' }))).TopicArn;
});

test.after(async () => {
  sns.destroy();
  await sim.close();
});

test('CreateTopic is idempotent and names the caller account and region', async () => {
  assert.strictEqual(topicArn, 'arn:aws:sns:eu-west-1:111122223333:qfs-notifications');
  const again = await sns.send(new CreateTopicCommand({ Name: 'qfs-notifications' }));
  assert.strictEqual(again.TopicArn, topicArn);
});

test('Publish stores the message with subject and attributes for /_sim/sns/messages', async () => {
  const subject = 'S'.repeat(99);
  const r = await sns.send(new PublishCommand({
    TopicArn: topicArn, Subject: subject, Message: 'scan finished: web:1.4.2 has 1 critical',
    MessageAttributes: { severity: { DataType: 'String', StringValue: 'critical' }, count: { DataType: 'Number', StringValue: '1' } },
  }));
  assert.match(r.MessageId, /^[0-9a-f-]{36}$/);
  const got = await admin(sim, 'GET', '/_sim/sns/messages?topic=' + encodeURIComponent(topicArn));
  const m = got.body.messages.find((x) => x.message_id === r.MessageId);
  assert.ok(m, 'published message is listed');
  assert.strictEqual(m.subject, subject);
  assert.strictEqual(m.message, 'scan finished: web:1.4.2 has 1 critical');
  assert.deepStrictEqual(m.message_attributes.severity, { Type: 'String', Value: 'critical' });
  assert.strictEqual(m.account, '111122223333');
  assert.ok(Date.parse(m.timestamp) > 0);
  // A message of exactly 262,144 bytes is accepted.
  await sns.send(new PublishCommand({ TopicArn: topicArn, Message: 'x'.repeat(262144) }));
  const cleared = await admin(sim, 'DELETE', '/_sim/sns/messages');
  assert.ok(cleared.body.removed >= 2);
  assert.strictEqual((await admin(sim, 'GET', '/_sim/sns/messages')).body.messages.length, 0);
});

test('Publish is refused as AWS refuses it', async () => {
  const cases = [
    [{ Subject: 'S'.repeat(100), Message: 'm' }, 'Invalid parameter: Subject'],
    [{ Subject: 'line one\nline two', Message: 'm' }, 'Invalid parameter: Subject'],
    [{ Subject: 'tab\there', Message: 'm' }, 'Invalid parameter: Subject'],
    [{ Message: 'x'.repeat(262145) }, 'Invalid parameter: Message too long'],
    [{ Message: '' }, 'Invalid parameter: Empty message'],
  ];
  for (const [input, message] of cases) {
    const e = await rejects(sns.send(new PublishCommand(Object.assign({ TopicArn: topicArn }, input))));
    assert.strictEqual(e.name, 'InvalidParameterException', JSON.stringify(input).slice(0, 60));
    assert.strictEqual(e.Error.Code, 'InvalidParameter');
    assert.strictEqual(e.Error.Type, 'Sender');
    assert.strictEqual(e.message, message);
    assert.strictEqual(e.$metadata.httpStatusCode, 400);
  }
  const missing = await rejects(sns.send(new PublishCommand({ TopicArn: topicArn.replace('qfs-notifications', 'absent'), Message: 'm' })));
  assert.strictEqual(missing.name, 'NotFoundException');
  const other = await rejects(sns.send(new PublishCommand({ TopicArn: 'arn:aws:sns:eu-west-1:222233334444:qfs-notifications', Message: 'm' })));
  assert.strictEqual(other.name, 'AuthorizationErrorException');
  const calls = await admin(sim, 'GET', '/_sim/calls?service=sns&operation=Publish');
  assert.ok(calls.body.counts.sns.Publish['400'] >= 5);
});
