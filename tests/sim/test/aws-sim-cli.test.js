'use strict';
// Tests of aws-sim as a program: the one stdout line, --seed none, --credentials, --region, and a
// clean exit 0 on SIGTERM.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const { STSClient, GetCallerIdentityCommand } = require('@aws-sdk/client-sts');
const { ECSClient, DescribeTaskDefinitionCommand } = require('@aws-sdk/client-ecs');
const { SNSClient, CreateTopicCommand } = require('@aws-sdk/client-sns');
const { rejects } = require('../aws-sim/testing');

const SERVER = path.join(__dirname, '..', 'aws-sim', 'server.js');

test('server.js prints one JSON line, serves, and exits 0 on SIGTERM', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aws-sim-cli-'));
  const credFile = path.join(dir, 'creds.json');
  fs.writeFileSync(credFile, JSON.stringify([{ access_key_id: 'AKIAQFSSIMSPOKE00001', secret_access_key: 'spoke-secret', account: '222233334444', user_name: 'spoke' }]));
  const child = spawn(process.execPath, [SERVER, '--port', '0', '--seed', 'none', '--region', 'us-east-1', '--credentials', credFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  try {
    const deadline = Date.now() + 10000;
    while (out.indexOf('\n') < 0) {
      if (Date.now() > deadline) throw new Error('no listening line; stderr: ' + err);
      await new Promise((r) => setTimeout(r, 20));
    }
    const line = JSON.parse(out.split('\n')[0]);
    assert.deepStrictEqual(Object.keys(line), ['service', 'port', 'url']);
    assert.strictEqual(line.service, 'aws-sim');
    assert.strictEqual(line.url, 'http://127.0.0.1:' + line.port);

    const creds = { accessKeyId: 'AKIAQFSSIMSPOKE00001', secretAccessKey: 'spoke-secret' };
    const sts = new STSClient({ endpoint: line.url, region: 'us-east-1', credentials: creds, maxAttempts: 1 });
    const who = await sts.send(new GetCallerIdentityCommand({}));
    assert.strictEqual(who.Account, '222233334444');
    assert.strictEqual(who.Arn, 'arn:aws:iam::222233334444:user/spoke');
    sts.destroy();
    const sns = new SNSClient({ endpoint: line.url, region: 'us-east-1', credentials: creds, maxAttempts: 1 });
    assert.strictEqual((await sns.send(new CreateTopicCommand({ Name: 't' }))).TopicArn, 'arn:aws:sns:us-east-1:222233334444:t');
    sns.destroy();
    // Without the seed there are no task definitions; the hub key still exists.
    const ecs = new ECSClient({ endpoint: line.url, region: 'eu-west-1', credentials: { accessKeyId: 'AKIAQFSSIMHUB0000001', secretAccessKey: 'qfs-sim-hub-secret-0000000000000000000001' }, maxAttempts: 1 });
    const e = await rejects(ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: 'web:42' })));
    assert.strictEqual(e.name, 'ClientException');
    ecs.destroy();
  } finally {
    child.kill('SIGTERM');
  }
  let timer;
  const end = await Promise.race([exited, new Promise((r) => { timer = setTimeout(() => r({ code: 'timeout' }), 8000); })]);
  clearTimeout(timer);
  assert.strictEqual(end.code, 0, 'exit after SIGTERM; stderr: ' + err);
  assert.strictEqual(out.trim().split('\n').length, 1, 'exactly one stdout line');
  fs.rmSync(dir, { recursive: true, force: true });
});
