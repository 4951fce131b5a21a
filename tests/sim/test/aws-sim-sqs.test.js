'use strict';
// Contract tests of aws-sim's SQS (JSON protocol) against the real AWS SDK v3 SQS client.

const test = require('node:test');
const assert = require('node:assert');
const {
  SQSClient, CreateQueueCommand, GetQueueUrlCommand, GetQueueAttributesCommand, SendMessageCommand, SendMessageBatchCommand,
  ReceiveMessageCommand, DeleteMessageCommand, DeleteMessageBatchCommand, ChangeMessageVisibilityCommand, PurgeQueueCommand,
} = require('@aws-sdk/client-sqs');
const { startSim, client, admin, rejects, waitFor } = require('../aws-sim/testing');

let sim;
let sqs;

test.before(async () => {
  sim = await startSim();
  sqs = client(SQSClient, sim);
});

test.after(async () => {
  sqs.destroy();
  await sim.close();
});

async function queue(name, attrs) {
  const r = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attrs }));
  return r.QueueUrl;
}

test('queue URLs name the sim, the account and the queue; GetQueueUrl and attributes', async () => {
  const url = await queue('deploy-events', { VisibilityTimeout: '45', ReceiveMessageWaitTimeSeconds: '0', MaximumMessageSize: '1048576' });
  assert.strictEqual(url, sim.url + '/111122223333/deploy-events');
  const again = await sqs.send(new GetQueueUrlCommand({ QueueName: 'deploy-events' }));
  assert.strictEqual(again.QueueUrl, url);
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'one' }));
  const a = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }));
  assert.strictEqual(a.Attributes.ApproximateNumberOfMessages, '1');
  assert.strictEqual(a.Attributes.VisibilityTimeout, '45');
  assert.strictEqual(a.Attributes.MaximumMessageSize, '1048576');
  assert.strictEqual(a.Attributes.QueueArn, 'arn:aws:sqs:eu-west-1:111122223333:deploy-events');
  // The same name with a different attribute is refused, as SQS does.
  const e = await rejects(sqs.send(new CreateQueueCommand({ QueueName: 'deploy-events', Attributes: { VisibilityTimeout: '10' } })));
  assert.strictEqual(e.name, 'QueueNameExists');
  const missing = await rejects(sqs.send(new GetQueueUrlCommand({ QueueName: 'nope' })));
  assert.strictEqual(missing.name, 'QueueDoesNotExist');
  assert.strictEqual(missing.Code, 'AWS.SimpleQueueService.NonExistentQueue');
});

test('full cycle: send, receive with string attributes, delete', async () => {
  const url = await queue('cycle');
  const sent = await sqs.send(new SendMessageCommand({
    QueueUrl: url, MessageBody: '{"hello":"world"}',
    MessageAttributes: { trace: { DataType: 'String', StringValue: 'abc' }, n: { DataType: 'Number', StringValue: '7' } },
  }));
  assert.ok(sent.MessageId);
  assert.ok(sent.MD5OfMessageAttributes);
  const before = Date.now();
  const r = await sqs.send(new ReceiveMessageCommand({
    QueueUrl: url, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'], MessageAttributeNames: ['All'],
  }));
  assert.strictEqual(r.Messages.length, 1);
  const m = r.Messages[0];
  assert.strictEqual(m.Body, '{"hello":"world"}');
  assert.strictEqual(m.MessageId, sent.MessageId);
  assert.strictEqual(m.Attributes.ApproximateReceiveCount, '1');
  assert.strictEqual(typeof m.Attributes.SentTimestamp, 'string');
  assert.ok(Math.abs(Number(m.Attributes.SentTimestamp) - before) < 5000);
  assert.strictEqual(m.MessageAttributes.trace.StringValue, 'abc');
  assert.strictEqual(m.MD5OfMessageAttributes, sent.MD5OfMessageAttributes);
  await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle }));
  const a = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
  assert.deepStrictEqual(a.Attributes, { ApproximateNumberOfMessages: '0', ApproximateNumberOfMessagesNotVisible: '0' });
});

test('long polling returns as soon as a message arrives', async () => {
  const url = await queue('longpoll');
  const started = Date.now();
  const pending = sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 10 }));
  setTimeout(() => sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'late' })), 300);
  const r = await pending;
  const took = Date.now() - started;
  assert.strictEqual(r.Messages[0].Body, 'late');
  assert.ok(took >= 250 && took < 3000, 'long poll took ' + took + ' ms');
  // With nothing to receive, a short wait runs out and returns no messages.
  const t0 = Date.now();
  const empty = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 1 }));
  assert.ok(!empty.Messages || empty.Messages.length === 0);
  assert.ok(Date.now() - t0 >= 900);
});

test('a long poll whose client has gone takes no message', async () => {
  const url = await queue('abandoned');
  const controller = new AbortController();
  const pending = sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 10 }), { abortSignal: controller.signal });
  const waiting = async () => (await admin(sim, 'GET', '/_sim/sqs/queues')).body.queues.find((q) => q.name === 'abandoned').long_polls;
  await waitFor(async () => (await waiting()) === 1, 3000, 'the long poll to arrive');
  controller.abort();
  await rejects(pending);
  await waitFor(async () => (await waiting()) === 0, 3000, 'the sim to drop the long poll');
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'kept' }));
  const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 1, AttributeNames: ['ApproximateReceiveCount'] }));
  assert.strictEqual(r.Messages[0].Body, 'kept');
  assert.strictEqual(r.Messages[0].Attributes.ApproximateReceiveCount, '1');
});

test('the visibility timeout hides a message, then it comes back with a higher receive count', async () => {
  const url = await queue('visibility', { VisibilityTimeout: '1' });
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'again' }));
  const first = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MessageSystemAttributeNames: ['All'] }));
  assert.strictEqual(first.Messages[0].Attributes.ApproximateReceiveCount, '1');
  const hidden = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url }));
  assert.ok(!hidden.Messages);
  const t0 = Date.now();
  const second = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 5, AttributeNames: ['ApproximateReceiveCount'] }));
  assert.ok(Date.now() - t0 < 3000);
  assert.strictEqual(second.Messages[0].Attributes.ApproximateReceiveCount, '2');
  assert.notStrictEqual(second.Messages[0].ReceiptHandle, first.Messages[0].ReceiptHandle);
  // ChangeMessageVisibility to 0 releases the message at once.
  await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: second.Messages[0].ReceiptHandle, VisibilityTimeout: 0 }));
  const third = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, AttributeNames: ['ApproximateReceiveCount'] }));
  assert.strictEqual(third.Messages[0].Attributes.ApproximateReceiveCount, '3');
});

test('DeleteMessageBatch reports a bad receipt handle in Failed and deletes the rest', async () => {
  const url = await queue('batch');
  const sent = await sqs.send(new SendMessageBatchCommand({
    QueueUrl: url, Entries: [{ Id: 'a', MessageBody: 'A' }, { Id: 'b', MessageBody: 'B' }],
  }));
  assert.strictEqual(sent.Successful.length, 2);
  const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10 }));
  assert.strictEqual(r.Messages.length, 2);
  const out = await sqs.send(new DeleteMessageBatchCommand({
    QueueUrl: url,
    Entries: [{ Id: 'm0', ReceiptHandle: r.Messages[0].ReceiptHandle }, { Id: 'm1', ReceiptHandle: 'not-a-handle' }, { Id: 'm2', ReceiptHandle: r.Messages[1].ReceiptHandle }],
  }));
  assert.deepStrictEqual(out.Successful.map((s) => s.Id).sort(), ['m0', 'm2']);
  assert.strictEqual(out.Failed.length, 1);
  assert.strictEqual(out.Failed[0].Id, 'm1');
  assert.strictEqual(out.Failed[0].Code, 'ReceiptHandleIsInvalid');
  assert.strictEqual(out.Failed[0].SenderFault, true);
  const a = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }));
  assert.strictEqual(a.Attributes.ApproximateNumberOfMessages, '0');
  assert.strictEqual(a.Attributes.ApproximateNumberOfMessagesNotVisible, '0');
  const e = await rejects(sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: 'garbage' })));
  assert.strictEqual(e.name, 'ReceiptHandleIsInvalid');
});

test('a queue worked from the front keeps its order; held and returning messages are not lost', async () => {
  const url = await queue('front', { VisibilityTimeout: '30' });
  const bodies = Array.from({ length: 1500 }, (_, i) => 'm' + i);
  for (let i = 0; i < bodies.length; i += 10) {
    await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: bodies.slice(i, i + 10).map((b, j) => ({ Id: 'e' + j, MessageBody: b })) }));
  }
  // The first receive is held (not deleted); everything after it is received and deleted in turn.
  const held = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10 }))).Messages;
  assert.deepStrictEqual(held.map((m) => m.Body), bodies.slice(0, 10));
  const got = [];
  for (;;) {
    const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10 }));
    if (!r.Messages) break;
    got.push(...r.Messages.map((m) => m.Body));
    await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: r.Messages.map((m, j) => ({ Id: 'd' + j, ReceiptHandle: m.ReceiptHandle })) }));
  }
  assert.deepStrictEqual(got, bodies.slice(10));
  // The held messages come back when their visibility ends, and then the queue is empty.
  await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: held[3].ReceiptHandle, VisibilityTimeout: 0 }));
  const back = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10 }));
  assert.deepStrictEqual(back.Messages.map((m) => m.Body), ['m3']);
  assert.strictEqual(back.Messages[0].MessageId, held[3].MessageId);
  await sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'after purge' }));
  const after = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10 }));
  assert.deepStrictEqual(after.Messages.map((m) => m.Body), ['after purge']);
});

test('redrive moves a message to the DLQ after maxReceiveCount receives', async () => {
  const dlqUrl = await queue('events-dlq');
  const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))).Attributes.QueueArn;
  const url = await queue('events-main', { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 2 }) });
  const sent = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'poison' }));
  for (let i = 1; i <= 2; i++) {
    const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, VisibilityTimeout: 0, AttributeNames: ['ApproximateReceiveCount'] }));
    assert.strictEqual(r.Messages[0].Attributes.ApproximateReceiveCount, String(i));
  }
  const third = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, VisibilityTimeout: 0 }));
  assert.ok(!third.Messages, 'the third receive must not deliver the message');
  const d = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl, MessageSystemAttributeNames: ['All'] }));
  assert.strictEqual(d.Messages[0].Body, 'poison');
  assert.strictEqual(d.Messages[0].MessageId, sent.MessageId);
  assert.strictEqual(d.Messages[0].Attributes.DeadLetterQueueSourceArn, 'arn:aws:sqs:eu-west-1:111122223333:events-main');
});

test('validation: message size, empty body, receive limits, purge once a minute', async () => {
  const url = await queue('limits', { MaximumMessageSize: '1024' });
  const big = await rejects(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x'.repeat(1025) })));
  assert.strictEqual(big.name, 'InvalidParameterValue');
  assert.match(big.message, /Message must be shorter than 1024 bytes/);
  const empty = await rejects(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: '' })));
  assert.strictEqual(empty.name, 'MissingParameter');
  const tooMany = await rejects(sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 11 })));
  assert.match(tooMany.message, /MaxNumberOfMessages is invalid/);
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'p' }));
  await sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
  const a = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages'] }));
  assert.strictEqual(a.Attributes.ApproximateNumberOfMessages, '0');
  const again = await rejects(sqs.send(new PurgeQueueCommand({ QueueUrl: url })));
  assert.strictEqual(again.name, 'PurgeQueueInProgress');
  const q = await admin(sim, 'GET', '/_sim/sqs/queues');
  assert.ok(q.body.queues.some((x) => x.name === 'limits'));
});
