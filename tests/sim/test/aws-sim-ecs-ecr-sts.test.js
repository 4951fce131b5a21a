'use strict';
// Contract tests of aws-sim's ECS, ECR and STS against the real AWS SDK v3 clients: lookups over
// the shared seed, AWS's errors, and cross-account access that only STS AssumeRole opens.

const test = require('node:test');
const assert = require('node:assert');
const { ECSClient, DescribeTaskDefinitionCommand } = require('@aws-sdk/client-ecs');
const { ECRClient, DescribeImagesCommand } = require('@aws-sdk/client-ecr');
const { STSClient, AssumeRoleCommand, GetCallerIdentityCommand } = require('@aws-sdk/client-sts');
const { startSim, client, admin, rejects } = require('../aws-sim/testing');

const WEB_ARN = 'arn:aws:ecs:eu-west-1:111122223333:task-definition/web:42';
const MIGRATE_ARN = 'arn:aws:ecs:us-east-1:222233334444:task-definition/migrate:7';
const MEMBER_ROLE = 'arn:aws:iam::222233334444:role/QfsEcsDescribeRole';

let sim;
const clients = [];
function mk(Cls, opts) {
  const c = client(Cls, sim, opts);
  clients.push(c);
  return c;
}

test.before(async () => {
  sim = await startSim();
});

test.after(async () => {
  for (const c of clients) c.destroy();
  await sim.close();
});

test('DescribeTaskDefinition by ARN, family:revision and family', async () => {
  const ecs = mk(ECSClient);
  const byArn = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: WEB_ARN, include: ['TAGS'] }));
  assert.strictEqual(byArn.taskDefinition.taskDefinitionArn, WEB_ARN);
  assert.strictEqual(byArn.taskDefinition.containerDefinitions[0].image, '111122223333.dkr.ecr.eu-west-1.amazonaws.com/web:1.4.2');
  assert.deepStrictEqual(byArn.tags, []);
  assert.ok(byArn.taskDefinition.registeredAt instanceof Date);
  const byRev = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: 'web:42' }));
  assert.strictEqual(byRev.taskDefinition.revision, 42);
  // A newer revision seeded through the admin API becomes the family's latest ACTIVE one.
  const added = await admin(sim, 'POST', '/_sim/ecs/task-definitions', {
    family: 'web', containerDefinitions: [{ name: 'app', image: 'nginx:1.27', essential: true }], tags: [{ key: 'team', value: 'platform' }],
  });
  assert.strictEqual(added.body.taskDefinitions[0].taskDefinitionArn, 'arn:aws:ecs:eu-west-1:111122223333:task-definition/web:43');
  const latest = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: 'web', include: ['TAGS'] }));
  assert.strictEqual(latest.taskDefinition.revision, 43);
  assert.deepStrictEqual(latest.tags, [{ key: 'team', value: 'platform' }]);
});

test('DescribeTaskDefinition of an unknown definition is a ClientException', async () => {
  const ecs = mk(ECSClient);
  for (const ref of ['nope', 'web:999', 'arn:aws:ecs:eu-west-1:111122223333:task-definition/nope:1']) {
    const e = await rejects(ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: ref })));
    assert.strictEqual(e.name, 'ClientException');
    assert.strictEqual(e.message, 'Unable to describe task definition.');
  }
});

test('DescribeImages by tag, by digest, by tag status, and its errors', async () => {
  const ecr = mk(ECRClient);
  const byTag = await ecr.send(new DescribeImagesCommand({ repositoryName: 'web', imageIds: [{ imageTag: '1.4.2' }] }));
  const d = byTag.imageDetails[0];
  assert.strictEqual(d.imageDigest, 'sha256:7dcb2c37f2269d5b5422dd0337357c380d4f03477105600ed4629900c29f6d0c');
  assert.deepStrictEqual(d.imageTags, ['1.4.2', 'latest']);
  assert.strictEqual(d.registryId, '111122223333');
  assert.strictEqual(d.imageSizeInBytes, 187654321);
  assert.strictEqual(d.imagePushedAt.getTime(), 1777629600 * 1000);
  const byDigest = await ecr.send(new DescribeImagesCommand({ repositoryName: 'worker', registryId: '111122223333', imageIds: [{ imageDigest: 'sha256:9e8f2a1a03f02ecdbce85356882aeee6261307a4fd3a80c1847d7475ac58cf1b' }] }));
  assert.deepStrictEqual(byDigest.imageDetails[0].imageTags, ['2.0.0']);
  const untagged = await ecr.send(new DescribeImagesCommand({ repositoryName: 'legacy', filter: { tagStatus: 'UNTAGGED' } }));
  assert.strictEqual(untagged.imageDetails.length, 1);
  assert.strictEqual(untagged.imageDetails[0].imageTags, undefined);
  const noImage = await rejects(ecr.send(new DescribeImagesCommand({ repositoryName: 'web', imageIds: [{ imageTag: '9.9.9' }] })));
  assert.strictEqual(noImage.name, 'ImageNotFoundException');
  assert.match(noImage.message, /imageTag:'9\.9\.9'.*repository with name 'web' in the registry with id '111122223333'/);
  const noRepo = await rejects(ecr.send(new DescribeImagesCommand({ repositoryName: 'absent' })));
  assert.strictEqual(noRepo.name, 'RepositoryNotFoundException');
  // Images added through the admin API are described like seeded ones.
  await admin(sim, 'POST', '/_sim/ecr/images', { repository: 'fresh', tags: ['1'], digest: 'sha256:' + 'a'.repeat(64), size: 10 });
  const fresh = await ecr.send(new DescribeImagesCommand({ repositoryName: 'fresh' }));
  assert.strictEqual(fresh.imageDetails[0].imageDigest, 'sha256:' + 'a'.repeat(64));
});

test('cross-account lookups are denied until AssumeRole gives credentials of that account', async () => {
  const hubEcs = mk(ECSClient, { region: 'us-east-1' });
  const denied = await rejects(hubEcs.send(new DescribeTaskDefinitionCommand({ taskDefinition: MIGRATE_ARN })));
  assert.strictEqual(denied.name, 'AccessDeniedException');
  assert.match(denied.message, /^User: arn:aws:iam::111122223333:user\/qfs-sim-hub is not authorized to perform: ecs:DescribeTaskDefinition/);
  const hubEcr = mk(ECRClient, { region: 'us-east-1' });
  const deniedEcr = await rejects(hubEcr.send(new DescribeImagesCommand({ repositoryName: 'batch/migrate', registryId: '222233334444' })));
  assert.strictEqual(deniedEcr.name, 'AccessDeniedException');

  const sts = mk(STSClient, { region: 'eu-west-1' });
  const me = await sts.send(new GetCallerIdentityCommand({}));
  assert.strictEqual(me.Account, '111122223333');
  assert.strictEqual(me.Arn, 'arn:aws:iam::111122223333:user/qfs-sim-hub');
  const assumed = await sts.send(new AssumeRoleCommand({ RoleArn: MEMBER_ROLE, RoleSessionName: 'qfs-parser', DurationSeconds: 900 }));
  const c = assumed.Credentials;
  assert.match(c.AccessKeyId, /^ASIA[A-Z0-9]{16}$/);
  assert.ok(c.SessionToken.length > 100);
  const left = c.Expiration.getTime() - Date.now();
  assert.ok(left > 880000 && left <= 900000, 'expires in ' + left + ' ms');
  assert.strictEqual(assumed.AssumedRoleUser.Arn, 'arn:aws:sts::222233334444:assumed-role/QfsEcsDescribeRole/qfs-parser');
  const creds = { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken };

  const memberSts = mk(STSClient, { region: 'us-east-1', credentials: creds });
  const who = await memberSts.send(new GetCallerIdentityCommand({}));
  assert.strictEqual(who.Account, '222233334444');
  assert.strictEqual(who.Arn, assumed.AssumedRoleUser.Arn);
  const memberEcs = mk(ECSClient, { region: 'us-east-1', credentials: creds });
  const td = await memberEcs.send(new DescribeTaskDefinitionCommand({ taskDefinition: MIGRATE_ARN }));
  assert.strictEqual(td.taskDefinition.containerDefinitions[0].image, '222233334444.dkr.ecr.us-east-1.amazonaws.com/batch/migrate:2026.05');
  const memberEcr = mk(ECRClient, { region: 'us-east-1', credentials: creds });
  const img = await memberEcr.send(new DescribeImagesCommand({ repositoryName: 'batch/migrate', imageIds: [{ imageTag: '2026.05' }] }));
  assert.strictEqual(img.imageDetails[0].imageDigest, 'sha256:060b087f39d5e24b06a35c6de0b85e2c50293dd4bdb58a43cd8bd5d315914b7e');
  // The member's credentials signed for another Region find nothing there.
  const wrongRegion = mk(ECSClient, { region: 'eu-west-1', credentials: creds });
  const e = await rejects(wrongRegion.send(new DescribeTaskDefinitionCommand({ taskDefinition: 'migrate:7' })));
  assert.strictEqual(e.name, 'ClientException');
  // And they are not the hub's: the hub's own task definition is now the other account's.
  const back = await rejects(memberEcs.send(new DescribeTaskDefinitionCommand({ taskDefinition: WEB_ARN })));
  assert.strictEqual(back.name, 'AccessDeniedException');
});

test('AssumeRole is denied for a missing or untrusting role, and validates DurationSeconds', async () => {
  const sts = mk(STSClient);
  const missing = await rejects(sts.send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::333344445555:role/QfsEcsDescribeRole', RoleSessionName: 's1' })));
  assert.strictEqual(missing.name, 'AccessDenied');
  assert.strictEqual(missing.$metadata.httpStatusCode, 403);
  assert.strictEqual(missing.message, 'User: arn:aws:iam::111122223333:user/qfs-sim-hub is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::333344445555:role/QfsEcsDescribeRole');
  await admin(sim, 'POST', '/_sim/sts/roles', { arn: 'arn:aws:iam::333344445555:role/Picky', trusted_accounts: ['222233334444'] });
  const untrusting = await rejects(sts.send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::333344445555:role/Picky', RoleSessionName: 's1' })));
  assert.strictEqual(untrusting.name, 'AccessDenied');
  await admin(sim, 'POST', '/_sim/sts/roles', { arn: 'arn:aws:iam::333344445555:role/WithExternalId', trusted_accounts: ['111122223333'], external_id: 'qfs-123' });
  const noExt = await rejects(sts.send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::333344445555:role/WithExternalId', RoleSessionName: 's1' })));
  assert.strictEqual(noExt.name, 'AccessDenied');
  const ok = await sts.send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::333344445555:role/WithExternalId', RoleSessionName: 's1', ExternalId: 'qfs-123' }));
  assert.ok(ok.Credentials.AccessKeyId.startsWith('ASIA'));
  const short = await rejects(sts.send(new AssumeRoleCommand({ RoleArn: MEMBER_ROLE, RoleSessionName: 's1', DurationSeconds: 899 })));
  assert.strictEqual(short.name, 'ValidationError');
  assert.match(short.message, /greater than or equal to 900/);
  const long = await rejects(sts.send(new AssumeRoleCommand({ RoleArn: MEMBER_ROLE, RoleSessionName: 's1', DurationSeconds: 7200 })));
  assert.strictEqual(long.message, 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
});
