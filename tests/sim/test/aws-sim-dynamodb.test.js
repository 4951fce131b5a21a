'use strict';
// Contract tests of aws-sim's DynamoDB (embedded dynalite behind the sim's SigV4 check, plus TTL)
// against the real AWS SDK v3 DynamoDB client.

const test = require('node:test');
const assert = require('node:assert');
const {
  DynamoDBClient, CreateTableCommand, DescribeTableCommand, PutItemCommand, GetItemCommand, UpdateTimeToLiveCommand, DescribeTimeToLiveCommand,
} = require('@aws-sdk/client-dynamodb');
const { startSim, client, admin, rejects, waitFor } = require('../aws-sim/testing');

let sim;
let ddb;

test.before(async () => {
  sim = await startSim();
  ddb = client(DynamoDBClient, sim);
  await ddb.send(new CreateTableCommand({
    TableName: 'qfs-cache',
    AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
    KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    BillingMode: 'PAY_PER_REQUEST',
  }));
  await waitFor(async () => (await ddb.send(new DescribeTableCommand({ TableName: 'qfs-cache' }))).Table.TableStatus === 'ACTIVE', 5000, 'table ACTIVE');
});

test.after(async () => {
  ddb.destroy();
  await sim.close();
});

test('tables belong to the caller account and region', async () => {
  const d = await ddb.send(new DescribeTableCommand({ TableName: 'qfs-cache' }));
  assert.strictEqual(d.Table.TableArn, 'arn:aws:dynamodb:eu-west-1:111122223333:table/qfs-cache');
  const other = client(DynamoDBClient, sim, { region: 'us-east-1' });
  const e = await rejects(other.send(new DescribeTableCommand({ TableName: 'qfs-cache' })));
  assert.strictEqual(e.name, 'ResourceNotFoundException');
  other.destroy();
});

test('put, get and a conditional put that fails with ConditionalCheckFailedException', async () => {
  await ddb.send(new PutItemCommand({ TableName: 'qfs-cache', Item: { pk: { S: 'img#web' }, digest: { S: 'sha256:1' } } }));
  const got = await ddb.send(new GetItemCommand({ TableName: 'qfs-cache', Key: { pk: { S: 'img#web' } }, ConsistentRead: true }));
  assert.deepStrictEqual(got.Item, { pk: { S: 'img#web' }, digest: { S: 'sha256:1' } });
  const none = await ddb.send(new GetItemCommand({ TableName: 'qfs-cache', Key: { pk: { S: 'absent' } } }));
  assert.strictEqual(none.Item, undefined);
  const e = await rejects(ddb.send(new PutItemCommand({
    TableName: 'qfs-cache', Item: { pk: { S: 'img#web' }, digest: { S: 'sha256:2' } }, ConditionExpression: 'attribute_not_exists(pk)',
  })));
  assert.strictEqual(e.name, 'ConditionalCheckFailedException');
  assert.strictEqual(e.$metadata.httpStatusCode, 400);
});

test('TTL: UpdateTimeToLive / DescribeTimeToLive, and expired items stay readable until the admin expires them', async () => {
  const before = await ddb.send(new DescribeTimeToLiveCommand({ TableName: 'qfs-cache' }));
  assert.deepStrictEqual(before.TimeToLiveDescription, { TimeToLiveStatus: 'DISABLED' });
  const up = await ddb.send(new UpdateTimeToLiveCommand({ TableName: 'qfs-cache', TimeToLiveSpecification: { Enabled: true, AttributeName: 'ttl' } }));
  assert.deepStrictEqual(up.TimeToLiveSpecification, { Enabled: true, AttributeName: 'ttl' });
  const after = await ddb.send(new DescribeTimeToLiveCommand({ TableName: 'qfs-cache' }));
  assert.deepStrictEqual(after.TimeToLiveDescription, { TimeToLiveStatus: 'ENABLED', AttributeName: 'ttl' });
  const twice = await rejects(ddb.send(new UpdateTimeToLiveCommand({ TableName: 'qfs-cache', TimeToLiveSpecification: { Enabled: true, AttributeName: 'ttl' } })));
  assert.strictEqual(twice.name, 'ValidationException');
  const noTable = await rejects(ddb.send(new DescribeTimeToLiveCommand({ TableName: 'absent' })));
  assert.strictEqual(noTable.name, 'ResourceNotFoundException');

  const past = String(Math.floor(Date.now() / 1000) - 3600);
  const future = String(Math.floor(Date.now() / 1000) + 3600);
  await ddb.send(new PutItemCommand({ TableName: 'qfs-cache', Item: { pk: { S: 'old' }, ttl: { N: past } } }));
  await ddb.send(new PutItemCommand({ TableName: 'qfs-cache', Item: { pk: { S: 'new' }, ttl: { N: future } } }));
  const old = await ddb.send(new GetItemCommand({ TableName: 'qfs-cache', Key: { pk: { S: 'old' } } }));
  assert.strictEqual(old.Item.ttl.N, past, 'an expired item is still readable');
  // The overwrite-if-expired pattern from aws-wire.md §2.3 works on the expired item.
  await ddb.send(new PutItemCommand({
    TableName: 'qfs-cache', Item: { pk: { S: 'old' }, ttl: { N: past }, again: { BOOL: true } },
    ConditionExpression: 'attribute_not_exists(pk) OR #t < :now', ExpressionAttributeNames: { '#t': 'ttl' },
    ExpressionAttributeValues: { ':now': { N: String(Math.floor(Date.now() / 1000)) } },
  }));
  const swept = await admin(sim, 'POST', '/_sim/dynamodb/expire-ttl', {});
  assert.strictEqual(swept.body.deleted, 1);
  const gone = await ddb.send(new GetItemCommand({ TableName: 'qfs-cache', Key: { pk: { S: 'old' } } }));
  assert.strictEqual(gone.Item, undefined);
  const kept = await ddb.send(new GetItemCommand({ TableName: 'qfs-cache', Key: { pk: { S: 'new' } } }));
  assert.strictEqual(kept.Item.ttl.N, future);
});
