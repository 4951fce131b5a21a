'use strict';
// The CloudFormation templates of deploy/cloudformation/: each parses with the short-form tags,
// checks out against the CloudFormation resource specification (@aws-cdk/aws-service-spec: types,
// property names and types, required properties, GetAtt attributes), resolves every Ref, GetAtt,
// Sub and FindInMap, and builds what issue 6 asks for (rules with the shared pattern, queue, DLQ,
// table, topic, secret, EFS, the Fargate task and its containers, the spoke roles).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const cfn = require('./deploy/cfn');
const qfs = require('./deploy/qfs');

const PATTERN = JSON.parse(fs.readFileSync(path.join(cfn.SRC, 'deploy', 'event-patterns.json'), 'utf8'));
const T = Object.fromEntries(cfn.loadAll().map((t) => [t.name, t]));
const MAIN = ['centralized-hub', 'single-account'];
const CONTAINERS = ['nats', ...qfs.SERVICES];

function containers(tpl) {
  return tpl.Resources.TaskDefinition.Properties.ContainerDefinitions;
}

function env(container) {
  return Object.fromEntries((container.Environment || []).map((e) => [e.Name, e.Value]));
}

test('short-form tags parse to the long forms', () => {
  const doc = cfn.parseTemplate([
    'a: !Ref X', 'b: !GetAtt R.Arn', 'c: !GetAtt [R, Endpoint.Address]', 'd: !Sub "${X}-y"', 'e: !Join [",", [a, b]]',
    'f: !If [C, 1, 2]', 'g: !Equals [a, b]', 'h: !Not [!Condition C]', 'i: !And [!Condition C, !Condition D]',
    'j: !Or [!Condition C, !Condition D]', 'k: !Select [0, !Split [",", "a,b"]]', 'l: !FindInMap [M, K, V]',
    'm: !GetAZs ""', 'n: !ImportValue Name', 'o: !Base64 text', 'p: !Sub ["${A}", {A: !Ref X}]',
  ].join('\n'));
  assert.deepEqual(doc, {
    a: { Ref: 'X' },
    b: { 'Fn::GetAtt': ['R', 'Arn'] },
    c: { 'Fn::GetAtt': ['R', 'Endpoint.Address'] },
    d: { 'Fn::Sub': '${X}-y' },
    e: { 'Fn::Join': [',', ['a', 'b']] },
    f: { 'Fn::If': ['C', 1, 2] },
    g: { 'Fn::Equals': ['a', 'b'] },
    h: { 'Fn::Not': [{ Condition: 'C' }] },
    i: { 'Fn::And': [{ Condition: 'C' }, { Condition: 'D' }] },
    j: { 'Fn::Or': [{ Condition: 'C' }, { Condition: 'D' }] },
    k: { 'Fn::Select': [0, { 'Fn::Split': [',', 'a,b'] }] },
    l: { 'Fn::FindInMap': ['M', 'K', 'V'] },
    m: { 'Fn::GetAZs': '' },
    n: { 'Fn::ImportValue': 'Name' },
    o: { 'Fn::Base64': 'text' },
    p: { 'Fn::Sub': ['${A}', { A: { Ref: 'X' } }] },
  });
});

test('the checker catches what CloudFormation would refuse', () => {
  const tpl = cfn.parseTemplate(fs.readFileSync(T['centralized-hub'].file, 'utf8'));
  tpl.Resources.EventsQueue.Properties.VisibilityTimeouts = 30;
  delete tpl.Resources.EventBus.Properties.Name;
  tpl.Resources.CacheTable.Properties.TimeToLiveSpecification.Enabled = 'sometimes';
  tpl.Resources.Bogus = { Type: 'AWS::SQS::Queues', Properties: {} };
  tpl.Outputs.A = { Value: { 'Fn::GetAtt': ['EventsQueue', 'Url'] } };
  tpl.Outputs.B = { Value: { 'Fn::Sub': '${NoSuchThing}' } };
  tpl.Outputs.C = { Value: { Ref: 'Trail' } };
  tpl.Outputs.D = { Value: { 'Fn::FindInMap': ['QualysGateways', 'US9', 'Url'] } };
  const errs = cfn.checkTemplate(tpl).join('\n');
  for (const want of ['unknown property VisibilityTimeouts', 'required property Name is missing', 'expected a boolean',
    'unknown resource type AWS::SQS::Queues', 'has no attribute Url', 'NoSuchThing is not a parameter',
    'exists only when CreateCloudTrail holds', 'has no key US9']) {
    assert.match(errs, new RegExp(want.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), want);
  }
});

for (const name of cfn.TEMPLATES) {
  test(name + ': valid against the CloudFormation resource specification, every reference resolved', () => {
    const { tpl, text } = T[name];
    assert.deepEqual(cfn.checkTemplate(tpl), []);
    // CloudFormation refuses YAML anchors, aliases and merge keys.
    const code = text.split('\n').filter((l) => !/^\s*#/.test(l)).join('\n');
    assert.equal((/(^|[\s[{,])[&*][A-Za-z][\w-]*|<<:/m.exec(code) || [null])[0], null, 'YAML anchors or aliases');
    // No account id is written into a template: they come from parameters and AWS::AccountId.
    assert.equal((/(?<![\w.-])[0-9]{12}(?![\w-])/.exec(code) || [null])[0], null, 'a hard-coded account id');
  });

  test(name + ': every event rule uses deploy/event-patterns.json', () => {
    const rules = cfn.resourcesOfType(T[name].tpl, 'AWS::Events::Rule');
    assert.ok(rules.length >= 1);
    for (const [id, r] of rules) {
      assert.deepEqual(r.Properties.EventPattern, PATTERN, id);
      assert.equal(r.Properties.State, 'ENABLED', id);
    }
  });
}

test('QualysPod maps every platform of the reference to its gateway, as the C code and qfs-deploy.sh do', () => {
  const c = qfs.podsFromC();
  assert.equal(Object.keys(c).length, 13, 'common/src/qualys_config.c lists 13 platforms');
  const ref = qfs.podsFromReference();
  if (ref) assert.deepEqual(ref, c, 'shared/reference/qualys-csapi.md §1');
  assert.deepEqual(qfs.podsFromScript(), c, 'deploy/qfs-deploy.sh');
  for (const name of MAIN) {
    const tpl = T[name].tpl;
    assert.deepEqual([...tpl.Parameters.QualysPod.AllowedValues].sort(), Object.keys(c).sort(), name);
    const map = Object.fromEntries(Object.entries(tpl.Mappings.QualysGateways).map(([k, v]) => [k, v.Url]));
    assert.deepEqual(map, c, name);
  }
});

test('single-account is the hub plus the local rule and the Qualys ECR role, without the organisation', () => {
  const hub = T['centralized-hub'].tpl.Resources;
  const one = T['single-account'].tpl.Resources;
  // What differs, and why; everything else must be the same resource.
  const onlyHub = { EventBusPolicy: 'admits the organisation to the hub bus' };
  const onlyOne = { LocalEventsRule: "this Region's own events", QualysEcrRole: 'Qualys reads this account\'s ECR' };
  const changed = {
    EventsQueuePolicy: 'admits the local rule too',
    ParserPolicy: 'no sts:AssumeRole into member accounts',
    ScannerPollerPolicy: 'no sts:AssumeRole into member accounts',
    HubEventsRule: 'description',
  };
  assert.deepEqual(Object.keys(hub).filter((k) => !(k in one)).sort(), Object.keys(onlyHub));
  assert.deepEqual(Object.keys(one).filter((k) => !(k in hub)).sort(), Object.keys(onlyOne).sort());
  for (const k of Object.keys(hub)) {
    if (k in onlyHub) continue;
    if (k in changed) {
      assert.notDeepEqual(one[k], hub[k], k + ' was expected to differ: ' + changed[k]);
      continue;
    }
    assert.deepEqual(one[k], hub[k], k);
  }
  const assumes = (r) => r.Properties.PolicyDocument.Statement.filter((s) => [].concat(s.Action).includes('sts:AssumeRole'));
  assert.equal(assumes(one.ParserPolicy).length, 0);
  assert.equal(assumes(one.ScannerPollerPolicy).length, 0);
  assert.equal(one.LocalEventsRule.Properties.EventBusName, 'default');
  assert.deepEqual(one.LocalEventsRule.Properties.Targets, hub.HubEventsRule.Properties.Targets);
});

for (const name of MAIN) {
  const tpl = T[name].tpl;
  const R = tpl.Resources;

  test(name + ': queue with SSE and a DLQ; only this stack\'s rules may send, over TLS', () => {
    const q = R.EventsQueue.Properties;
    const dlq = R.EventsDeadLetterQueue.Properties;
    assert.equal(q.SqsManagedSseEnabled, true);
    assert.equal(dlq.SqsManagedSseEnabled, true);
    assert.deepEqual(q.RedrivePolicy.deadLetterTargetArn, { 'Fn::GetAtt': ['EventsDeadLetterQueue', 'Arn'] });
    assert.ok(q.RedrivePolicy.maxReceiveCount >= 1 && q.RedrivePolicy.maxReceiveCount <= 10);
    assert.ok(dlq.MessageRetentionPeriod >= q.MessageRetentionPeriod, 'the DLQ keeps messages longer');
    // The rules that target the queue are exactly the ones the policy admits.
    const rules = cfn.resourcesOfType(tpl, 'AWS::Events::Rule')
      .filter(([, r]) => r.Properties.Targets.some((t) => JSON.stringify(t.Arn) === JSON.stringify({ 'Fn::GetAtt': ['EventsQueue', 'Arn'] })));
    for (const [, r] of rules) {
      assert.deepEqual(r.Properties.Targets[0].DeadLetterConfig, { Arn: { 'Fn::GetAtt': ['EventsDeadLetterQueue', 'Arn'] } });
    }
    const stmts = R.EventsQueuePolicy.Properties.PolicyDocument.Statement;
    const allow = stmts.filter((s) => s.Effect === 'Allow');
    assert.equal(allow.length, 1);
    assert.deepEqual(allow[0].Principal, { Service: 'events.amazonaws.com' });
    assert.equal(allow[0].Action, 'sqs:SendMessage');
    assert.deepEqual(allow[0].Condition.ArnEquals['aws:SourceArn'].map((a) => a['Fn::GetAtt'][0]).sort(), rules.map(([id]) => id).sort());
    const deny = stmts.find((s) => s.Effect === 'Deny');
    assert.deepEqual(deny.Condition, { Bool: { 'aws:SecureTransport': 'false' } });
  });

  test(name + ': DynamoDB cache on demand, with the TTL attribute and key the C code uses, PITR and SSE', () => {
    const t = R.CacheTable.Properties;
    const c = fs.readFileSync(path.join(cfn.SRC, 'common', 'src', 'kv_dynamodb.c'), 'utf8');
    assert.equal(t.BillingMode, 'PAY_PER_REQUEST');
    assert.deepEqual(t.KeySchema, [{ AttributeName: 'pk', KeyType: 'HASH' }]);
    assert.match(c, /"pk"/);
    assert.deepEqual(t.TimeToLiveSpecification, { AttributeName: 'ttl', Enabled: true });
    assert.match(c, /"ttl"/);
    assert.deepEqual(t.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true });
    assert.deepEqual(t.SSESpecification, { SSEEnabled: true });
  });

  test(name + ': SNS topic with KMS and an optional e-mail subscription; the Qualys secret', () => {
    assert.ok(R.NotificationsTopic.Properties.KmsMasterKeyId);
    const sub = R.NotificationsEmailSubscription;
    assert.equal(sub.Condition, 'HasNotificationEmail');
    assert.equal(sub.Properties.Protocol, 'email');
    assert.deepEqual(sub.Properties.Endpoint, { Ref: 'NotificationEmail' });
    assert.equal(tpl.Parameters.NotificationEmail.Default, '');
    assert.equal(R.QualysSecret.Type, 'AWS::SecretsManager::Secret');
    assert.equal(R.QualysSecret.Properties.SecretString, undefined, 'no credential in the template');
    for (const c of containers(tpl).filter((x) => ['registry', 'scanner-poller'].includes(x.Name))) {
      assert.deepEqual(env(c).QFS_QUALYS_SECRET_ARN, { Ref: 'QualysSecret' }, c.Name);
      assert.deepEqual(env(c).QUALYS_GATEWAY_URL, { 'Fn::FindInMap': ['QualysGateways', { Ref: 'QualysPod' }, 'Url'] }, c.Name);
    }
  });

  test(name + ': JetStream on encrypted EFS through an access point owned by the image\'s user, over TLS and IAM', () => {
    const fsys = R.JetStreamFileSystem.Properties;
    assert.equal(fsys.Encrypted, true);
    const ap = R.JetStreamAccessPoint.Properties;
    const dockerfile = fs.readFileSync(path.join(cfn.SRC, 'Dockerfile'), 'utf8');
    const user = /^USER (\d+):(\d+)\s*$/m.exec(dockerfile);
    assert.ok(user, 'the Dockerfile runs as a numeric USER uid:gid');
    assert.deepEqual(ap.PosixUser, { Uid: user[1], Gid: user[2] });
    assert.equal(ap.RootDirectory.CreationInfo.OwnerUid, user[1]);
    const vol = R.TaskDefinition.Properties.Volumes.find((v) => v.Name === 'jetstream').EFSVolumeConfiguration;
    assert.equal(vol.TransitEncryption, 'ENABLED');
    assert.deepEqual(vol.AuthorizationConfig, { AccessPointId: { Ref: 'JetStreamAccessPoint' }, IAM: 'ENABLED' });
    const mounts = cfn.resourcesOfType(tpl, 'AWS::EFS::MountTarget');
    assert.equal(mounts.length, 2);
    for (const [, m] of mounts) assert.deepEqual(m.Properties.SecurityGroups, [{ 'Fn::GetAtt': ['FileSystemSecurityGroup', 'GroupId'] }]);
  });

  test(name + ': the task\'s network: only HTTPS and NFS out, NFS into the file system from the task only', () => {
    const sg = R.TaskSecurityGroup;
    assert.equal(sg.Condition, 'CreateSecurityGroup');
    assert.equal(sg.Properties.SecurityGroupIngress, undefined);
    assert.deepEqual(sg.Properties.SecurityGroupEgress.map((e) => [e.IpProtocol, e.FromPort, e.ToPort]), [['tcp', 443, 443]]);
    const egress = cfn.resourcesOfType(tpl, 'AWS::EC2::SecurityGroupEgress');
    assert.deepEqual(egress.map(([, e]) => [e.Properties.GroupId, e.Properties.IpProtocol, e.Properties.FromPort, e.Properties.ToPort,
      e.Properties.DestinationSecurityGroupId]), [[{ 'Fn::GetAtt': ['TaskSecurityGroup', 'GroupId'] }, 'tcp', 2049, 2049,
      { 'Fn::GetAtt': ['FileSystemSecurityGroup', 'GroupId'] }]]);
    const ingress = cfn.resourcesOfType(tpl, 'AWS::EC2::SecurityGroupIngress');
    assert.equal(ingress.length, 1);
    const i = ingress[0][1].Properties;
    assert.deepEqual([i.IpProtocol, i.FromPort, i.ToPort], ['tcp', 2049, 2049]);
    assert.deepEqual(i.SourceSecurityGroupId, { 'Fn::If': ['CreateSecurityGroup', { 'Fn::GetAtt': ['TaskSecurityGroup', 'GroupId'] }, { Ref: 'SecurityGroupId' }] });
    assert.deepEqual(R.FileSystemSecurityGroup.Properties.SecurityGroupEgress.map((e) => e.CidrIp), ['127.0.0.1/32'], 'no real egress');
    assert.equal(tpl.Parameters.SubnetIds.Type, 'List<AWS::EC2::Subnet::Id>');
    assert.equal(tpl.Parameters.SecurityGroupId.Default, '');
    const net = R.Service.Properties.NetworkConfiguration.AwsvpcConfiguration;
    assert.deepEqual(net.Subnets, { Ref: 'SubnetIds' });
    assert.deepEqual(net.SecurityGroups, [{ 'Fn::If': ['CreateSecurityGroup', { 'Fn::GetAtt': ['TaskSecurityGroup', 'GroupId'] }, { Ref: 'SecurityGroupId' }] }]);
  });

  test(name + ': one Fargate ARM64 task: nats-server and the six services, health checks, stop timeouts, awslogs', () => {
    const td = R.TaskDefinition.Properties;
    assert.deepEqual(td.RequiresCompatibilities, ['FARGATE']);
    assert.equal(td.NetworkMode, 'awsvpc');
    assert.deepEqual(td.RuntimePlatform, { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' });
    const cs = containers(tpl);
    assert.deepEqual(cs.map((c) => c.Name), CONTAINERS);
    const nats = cs[0];
    assert.equal(nats.Command[0], 'nats-server');
    assert.ok(nats.Command.includes('--jetstream'));
    const store = nats.Command[nats.Command.indexOf('--store_dir') + 1];
    assert.deepEqual(nats.MountPoints, [{ SourceVolume: 'jetstream', ContainerPath: store, ReadOnly: false }]);
    assert.deepEqual(nats.HealthCheck.Command, ['CMD', '/usr/local/bin/qfs-entrypoint', 'health', 'nats']);
    for (const c of cs) {
      assert.deepEqual(c.Image, { Ref: 'ImageUri' }, c.Name);
      assert.equal(c.Essential, true, c.Name);
      assert.equal(c.LogConfiguration.LogDriver, 'awslogs', c.Name);
      assert.deepEqual(c.LogConfiguration.Options, {
        'awslogs-group': { Ref: 'LogGroup' }, 'awslogs-region': { Ref: 'AWS::Region' }, 'awslogs-stream-prefix': c.Name,
      });
      assert.ok(c.HealthCheck && c.HealthCheck.StartPeriod > 0, c.Name);
      assert.ok(c.StopTimeout > 0 && c.StopTimeout <= 120, c.Name + ': Fargate allows a StopTimeout up to 120 s');
      if (c.Name === 'nats') continue;
      assert.deepEqual(c.Command, ['qfs-' + c.Name]);
      assert.deepEqual(c.HealthCheck.Command, ['CMD', '/usr/local/bin/qfs-' + c.Name, '--health']);
      assert.deepEqual(c.DependsOn, [{ ContainerName: 'nats', Condition: 'HEALTHY' }], c.Name + ' starts after nats-server and stops before it');
      const e = env(c);
      assert.equal(e.QFS_NATS_URL, 'nats://127.0.0.1:4222');
      assert.ok(Number(e.QFS_DRAIN_TIMEOUT_MS) < c.StopTimeout * 1000, c.Name + ': the drain ends before ECS sends SIGKILL');
      assert.ok(nats.StopTimeout >= c.StopTimeout, 'nats-server waits at least as long');
      assert.deepEqual(e.AWS_REGION, { Ref: 'AWS::Region' });
    }
  });

  test(name + ': each container sets the variables its service reads (--help, ARCHITECTURE.md §7), and every one it requires', () => {
    for (const c of containers(tpl).filter((x) => x.Name !== 'nats')) {
      const e = env(c);
      for (const k of Object.keys(e)) assert.equal(qfs.varProblem(c.Name, k), null);
      for (const k of qfs.requiredVars(c.Name)) assert.ok(k in e, c.Name + ' requires ' + k);
      if (['cache', 'registry', 'scanner-poller', 'notifier', 'parser'].includes(c.Name)) {
        assert.equal(e.QFS_CACHE_BACKEND, 'dynamodb', c.Name);
        assert.deepEqual(e.QFS_CACHE_TABLE, { Ref: 'CacheTable' }, c.Name);
      }
    }
    const byName = Object.fromEntries(containers(tpl).map((c) => [c.Name, env(c)]));
    assert.deepEqual(byName.ingest.QFS_SQS_QUEUE_URL, { Ref: 'EventsQueue' });
    assert.deepEqual(byName.notifier.QFS_SNS_TOPIC_ARN, { Ref: 'NotificationsTopic' });
    assert.deepEqual(byName['scanner-poller'].QFS_MAX_POLL_ATTEMPTS, { Ref: 'MaxPollAttempts' });
    assert.deepEqual(byName['scanner-poller'].QFS_POLL_INTERVAL_SECONDS, { Ref: 'PollIntervalSeconds' });
    assert.deepEqual(byName.notifier.QFS_NOTIFY_MIN_SEVERITY, { Ref: 'NotifyMinSeverity' });
    assert.deepEqual(byName.parser.QFS_ECS_DESCRIBE_ROLE_NAME, { Ref: 'EcsDescribeRoleName' });
    assert.deepEqual(byName.registry.QFS_ECR_ROLE_NAME, { Ref: 'EcrRoleName' });
    assert.equal(tpl.Parameters.EcsDescribeRoleName.Default, 'QfsEcsDescribeRole');
    assert.equal(tpl.Parameters.EcrRoleName.Default, 'QualysEcrScanRole');
    for (const p of ['QualysPod', 'MaxPollAttempts', 'PollIntervalSeconds', 'NotifyMinSeverity', 'NotificationEmail', 'ImageUri', 'CreateTrail']) {
      assert.ok(p in tpl.Parameters, p);
    }
  });

  test(name + ': the ECS service never runs two nats-servers on one JetStream directory', () => {
    const s = R.Service.Properties;
    assert.equal(s.LaunchType, 'FARGATE');
    assert.deepEqual(s.DesiredCount, { Ref: 'DesiredCount' });
    assert.equal(tpl.Parameters.DesiredCount.Default, 1);
    assert.deepEqual(tpl.Parameters.DesiredCount.AllowedValues, [0, 1]);
    assert.equal(s.DeploymentConfiguration.MaximumPercent, 100);
    assert.equal(s.DeploymentConfiguration.MinimumHealthyPercent, 0);
    assert.deepEqual(s.DeploymentConfiguration.DeploymentCircuitBreaker, { Enable: true, Rollback: true });
    // The task starts only once the file system is reachable and every policy is attached.
    const policies = cfn.resourcesOfType(tpl, 'AWS::IAM::Policy').map(([id]) => id);
    for (const d of [...policies, 'JetStreamMountTargetA', 'JetStreamMountTargetB']) assert.ok(R.Service.DependsOn.includes(d), d);
  });

  test(name + ': optional CloudTrail trail with a private, encrypted, TLS-only bucket', () => {
    for (const id of ['Trail', 'TrailBucket', 'TrailBucketPolicy']) assert.equal(R[id].Condition, 'CreateCloudTrail', id);
    const t = R.Trail.Properties;
    assert.equal(t.IsMultiRegionTrail, true);
    assert.equal(t.IsLogging, true);
    assert.equal(t.EnableLogFileValidation, true);
    assert.deepEqual(t.EventSelectors, [{ ReadWriteType: 'WriteOnly', IncludeManagementEvents: true }]);
    const b = R.TrailBucket.Properties;
    assert.deepEqual(Object.values(b.PublicAccessBlockConfiguration), [true, true, true, true]);
    assert.ok(b.BucketEncryption.ServerSideEncryptionConfiguration.length);
    assert.equal(R.TrailBucket.DeletionPolicy, 'Retain', 'audit logs outlive the stack');
    assert.deepEqual(tpl.Parameters.CreateTrail.AllowedValues, ['true', 'false']);
  });
}

test('centralized-hub: the bus admits the organisation only', () => {
  const p = T['centralized-hub'].tpl.Resources.EventBusPolicy.Properties;
  assert.equal(p.Statement.Action, 'events:PutEvents');
  assert.deepEqual(p.Statement.Condition, { StringEquals: { 'aws:PrincipalOrgID': { Ref: 'OrganizationId' } } });
  assert.deepEqual(p.Statement.Resource, { 'Fn::GetAtt': ['EventBus', 'Arn'] });
  assert.equal(T['centralized-hub'].tpl.Parameters.CreateTrail.Default, 'false', 'most organisations already have a trail');
});

test('spokes: forward to the hub bus in one hop with a role for EventBridge', () => {
  for (const name of ['centralized-spoke', 'regional-spoke']) {
    const R = T[name].tpl.Resources;
    const rule = R.ForwardRule.Properties;
    assert.equal(rule.EventBusName, 'default', name);
    assert.equal(rule.Targets.length, 1);
    assert.deepEqual(rule.Targets[0].Arn, { Ref: 'CentralEventBusArn' });
    assert.deepEqual(rule.Targets[0].RoleArn, { 'Fn::GetAtt': ['ForwardRole', 'Arn'] });
    const role = R.ForwardRole.Properties;
    assert.deepEqual(role.AssumeRolePolicyDocument.Statement[0].Principal, { Service: 'events.amazonaws.com' });
    assert.deepEqual(role.Policies[0].PolicyDocument.Statement, [{ Sid: role.Policies[0].PolicyDocument.Statement[0].Sid, Effect: 'Allow', Action: 'events:PutEvents', Resource: { Ref: 'CentralEventBusArn' } }]);
  }
});

test('centralized-spoke: the describe role trusts only the hub\'s task role; the Qualys role trusts Qualys with the external id', () => {
  const { tpl } = T['centralized-spoke'];
  const hub = T['centralized-hub'].tpl;
  const R = tpl.Resources;
  const d = R.EcsDescribeRole.Properties;
  assert.deepEqual(d.RoleName, { Ref: 'EcsDescribeRoleName' });
  assert.equal(tpl.Parameters.EcsDescribeRoleName.Default, hub.Parameters.EcsDescribeRoleName.Default);
  assert.equal(tpl.Parameters.HubTaskRoleName.Default, hub.Parameters.TaskRoleName.Default);
  const trust = d.AssumeRolePolicyDocument.Statement;
  assert.equal(trust.length, 1);
  assert.deepEqual(trust[0].Principal, { AWS: { 'Fn::Sub': 'arn:${AWS::Partition}:iam::${SecurityAccountId}:root' } });
  assert.deepEqual(trust[0].Condition, { ArnEquals: { 'aws:PrincipalArn': { 'Fn::Sub': 'arn:${AWS::Partition}:iam::${SecurityAccountId}:role/${HubTaskRoleName}' } } });
  const actions = d.Policies.flatMap((p) => p.PolicyDocument.Statement.flatMap((s) => [].concat(s.Action))).sort();
  assert.deepEqual(actions, ['ecr:DescribeImages', 'ecs:DescribeTaskDefinition']);

  const q = R.QualysEcrRole.Properties;
  assert.deepEqual(q.RoleName, { Ref: 'QualysEcrRoleName' });
  assert.equal(tpl.Parameters.QualysEcrRoleName.Default, 'QualysEcrScanRole');
  assert.equal(tpl.Parameters.QualysEcrRoleName.Default, hub.Parameters.EcrRoleName.Default);
  const qt = q.AssumeRolePolicyDocument.Statement;
  assert.deepEqual(qt[0].Principal, { AWS: { 'Fn::Sub': 'arn:${AWS::Partition}:iam::${QualysAccountId}:root' } });
  assert.deepEqual(qt[0].Condition, { StringEquals: { 'sts:ExternalId': { Ref: 'QualysExternalId' } } });
  for (const a of q.Policies.flatMap((p) => p.PolicyDocument.Statement.flatMap((s) => [].concat(s.Action)))) {
    assert.match(a, /^ecr:(Get|BatchGet|BatchCheck|Describe|List)/, 'ECR read-only: ' + a);
  }
  // IAM is global: the roles exist once per account, in GlobalResourcesRegion's stack instance.
  assert.equal(R.EcsDescribeRole.Condition, 'CreateGlobalResources');
  assert.equal(R.QualysEcrRole.Condition, 'CreateGlobalResources');
  assert.equal(R.ForwardRule.Condition, undefined);
  for (const p of ['QualysAccountId', 'QualysExternalId', 'CentralEventBusArn', 'SecurityAccountId']) assert.equal(tpl.Parameters[p].Default, undefined, p + ' is required');
  // The single account's Qualys role is the spoke's.
  assert.deepEqual(T['single-account'].tpl.Resources.QualysEcrRole.Properties.AssumeRolePolicyDocument, q.AssumeRolePolicyDocument);
  assert.deepEqual(T['single-account'].tpl.Resources.QualysEcrRole.Properties.Policies, q.Policies);
});
