'use strict';
// IAM in the CloudFormation templates: no "*" action anywhere, no service-wide wildcard granted, no
// "*" resource on a write action unless listed below with its reason, every trust policy and every
// "*" principal bound by a condition, and each service's task-role policy limited to what it uses.

const test = require('node:test');
const assert = require('node:assert/strict');
const cfn = require('./deploy/cfn');

// Allow statements that may name Resource "*" with a write action, and why.
const STAR_RESOURCE_WRITES = {
  'centralized-hub/JetStreamFileSystem/TaskRoleThroughMountTargets':
    'an EFS file system policy can only be about its own file system, whose ARN does not exist yet while the policy is written: "*" here is that file system',
  'single-account/JetStreamFileSystem/TaskRoleThroughMountTargets':
    'an EFS file system policy can only be about its own file system, whose ARN does not exist yet while the policy is written: "*" here is that file system',
};

// Actions that only read (IAM access levels List and Read); every other action counts as a write.
function isRead(action) {
  const name = action.split(':')[1] || '';
  return /^(Describe|Get|List|BatchGet|BatchCheck|Query|Scan)/.test(name);
}

function list(v) {
  return v === undefined ? [] : [].concat(v);
}

// documents yields [where, statement, kind] for every policy statement of a template.
function* statements(t) {
  for (const [id, r] of Object.entries(t.tpl.Resources)) {
    const p = r.Properties || {};
    const docs = [];
    if (r.Type === 'AWS::IAM::Role') {
      docs.push(['trust', p.AssumeRolePolicyDocument]);
      for (const pol of p.Policies || []) docs.push(['identity', pol.PolicyDocument]);
    } else if (r.Type === 'AWS::IAM::Policy') docs.push(['identity', p.PolicyDocument]);
    else if (['AWS::SQS::QueuePolicy', 'AWS::SNS::TopicPolicy', 'AWS::S3::BucketPolicy'].includes(r.Type)) docs.push(['resource', p.PolicyDocument]);
    else if (r.Type === 'AWS::EFS::FileSystem' && p.FileSystemPolicy) docs.push(['resource', p.FileSystemPolicy]);
    else if (r.Type === 'AWS::Events::EventBusPolicy') docs.push(['resource', { Statement: [p.Statement] }]);
    for (const [kind, doc] of docs) {
      assert.ok(doc && doc.Statement, t.name + '/' + id + ': a policy document');
      for (const s of list(doc.Statement)) yield [t.name + '/' + id + '/' + (s.Sid || '?'), s, kind, id];
    }
  }
}

const TEMPLATES = cfn.loadAll();

for (const t of TEMPLATES) {
  test(t.name + ': no "*" action, no wildcard granted, no "*" resource on a write action unless listed', () => {
    let n = 0;
    for (const [where, s, kind] of statements(t)) {
      n++;
      assert.ok(['Allow', 'Deny'].includes(s.Effect), where);
      assert.equal(s.NotAction, undefined, where + ': NotAction');
      assert.equal(s.NotResource, undefined, where + ': NotResource');
      const actions = list(s.Action);
      assert.ok(actions.length, where + ': no action');
      for (const a of actions) {
        assert.equal(typeof a, 'string', where);
        assert.notEqual(a, '*', where + ': "*" action');
        if (s.Effect === 'Allow') assert.ok(!a.includes('*'), where + ': wildcard action ' + a);
      }
      if (s.Effect !== 'Allow' || kind === 'trust') continue;
      const resources = list(s.Resource);
      assert.ok(resources.length, where + ': no Resource');
      if (resources.includes('*')) {
        const writes = actions.filter((a) => !isRead(a));
        if (writes.length) assert.ok(where in STAR_RESOURCE_WRITES, where + ': "*" resource for ' + writes.join(', '));
      }
    }
    assert.ok(n > 0);
    for (const k of Object.keys(STAR_RESOURCE_WRITES).filter((k) => k.startsWith(t.name + '/'))) {
      assert.ok([...statements(t)].some(([where]) => where === k), 'listed exception still exists: ' + k);
    }
  });

  test(t.name + ': every trust policy and every "*" principal is bound by a condition', () => {
    for (const [where, s, kind] of statements(t)) {
      if (s.Effect !== 'Allow') continue;
      const star = s.Principal === '*' || (s.Principal && s.Principal.AWS === '*');
      if (kind === 'trust' || star) {
        assert.ok(s.Condition && Object.keys(s.Condition).length, where + ': no condition');
      }
      if (kind === 'trust') assert.deepEqual(list(s.Action), ['sts:AssumeRole'], where);
    }
  });
}

// What each service's policy on the task role may do, and on what (Ref/GetAtt names or Sub text).
const TASK_POLICIES = {
  NatsPolicy: { 'elasticfilesystem:ClientMount': ['JetStreamFileSystem'], 'elasticfilesystem:ClientWrite': ['JetStreamFileSystem'] },
  IngestPolicy: {
    'sqs:ReceiveMessage': ['EventsQueue'], 'sqs:DeleteMessage': ['EventsQueue'], 'sqs:ChangeMessageVisibility': ['EventsQueue'],
    'sqs:GetQueueAttributes': ['EventsQueue'],
  },
  ParserPolicy: {
    'sts:AssumeRole': ['arn:${AWS::Partition}:iam::*:role/${EcsDescribeRoleName}'],
    'ecs:DescribeTaskDefinition': ['*'],
    'ecr:DescribeImages': ['arn:${AWS::Partition}:ecr:*:${AWS::AccountId}:repository/*'],
    'dynamodb:*Item': ['CacheTable'],
  },
  CachePolicy: { 'dynamodb:*Item': ['CacheTable'] },
  RegistryPolicy: { 'secretsmanager:GetSecretValue': ['QualysSecret'], 'dynamodb:*Item': ['CacheTable'] },
  ScannerPollerPolicy: {
    'secretsmanager:GetSecretValue': ['QualysSecret'],
    'sts:AssumeRole': ['arn:${AWS::Partition}:iam::*:role/${EcsDescribeRoleName}'],
    'ecr:DescribeImages': ['arn:${AWS::Partition}:ecr:*:${AWS::AccountId}:repository/*'],
    'dynamodb:*Item': ['CacheTable'],
  },
  NotifierPolicy: {
    'sns:Publish': ['NotificationsTopic'],
    'kms:GenerateDataKey': ['arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*'],
    'kms:Decrypt': ['arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*'],
    'dynamodb:*Item': ['CacheTable'],
  },
};
const DYNAMODB_ITEM = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'];

function resourceName(r) {
  if (typeof r === 'string') return r;
  if (r.Ref) return r.Ref;
  if (r['Fn::GetAtt']) return r['Fn::GetAtt'][0];
  if (r['Fn::Sub']) return r['Fn::Sub'];
  return JSON.stringify(r);
}

for (const t of TEMPLATES.filter((x) => x.tpl.Resources.TaskRole)) {
  test(t.name + ': one policy per service on the task role, each limited to that service\'s actions and resources', () => {
    const R = t.tpl.Resources;
    assert.equal(R.TaskRole.Properties.Policies, undefined, 'no inline policy shared by all services');
    assert.equal(R.TaskRole.Properties.ManagedPolicyArns, undefined, 'no managed policy');
    const attached = cfn.resourcesOfType(t.tpl, 'AWS::IAM::Policy');
    assert.deepEqual(attached.map(([id]) => id).sort(), Object.keys(TASK_POLICIES).sort());
    for (const [id, p] of attached) {
      assert.deepEqual(p.Properties.Roles, [{ Ref: 'TaskRole' }], id);
      const allowed = TASK_POLICIES[id];
      const seen = new Set();
      for (const s of p.Properties.PolicyDocument.Statement) {
        assert.equal(s.Effect, 'Allow');
        for (const a of list(s.Action)) {
          const key = DYNAMODB_ITEM.includes(a) ? 'dynamodb:*Item' : a;
          assert.ok(key in allowed, id + ' may not ' + a);
          seen.add(key);
          assert.deepEqual(list(s.Resource).map(resourceName), allowed[key], id + ' ' + a);
        }
        if (list(s.Action).includes('sts:AssumeRole')) {
          assert.deepEqual(s.Condition, { StringEquals: { 'aws:ResourceOrgID': { Ref: 'OrganizationId' } } }, id + ': only roles of the organisation');
        }
      }
      // In one account nothing is assumed; elsewhere every grant listed is used.
      const expected = Object.keys(allowed).filter((k) => !(k === 'sts:AssumeRole' && t.name === 'single-account'));
      assert.deepEqual([...seen].sort(), expected.sort(), id);
    }
  });

  test(t.name + ': the execution role pulls the image and writes to its own log group, nothing more', () => {
    const stmts = t.tpl.Resources.ExecutionRole.Properties.Policies.flatMap((p) => p.PolicyDocument.Statement);
    const byAction = {};
    for (const s of stmts) for (const a of list(s.Action)) byAction[a] = list(s.Resource).map(resourceName);
    assert.deepEqual(byAction, {
      'ecr:GetAuthorizationToken': ['*'], 'ecr:BatchCheckLayerAvailability': ['*'], 'ecr:GetDownloadUrlForLayer': ['*'],
      'ecr:BatchGetImage': ['*'], 'logs:CreateLogStream': ['LogGroup'], 'logs:PutLogEvents': ['LogGroup'],
    });
  });
}

test('the read/write classification used above is not vacuous', () => {
  assert.ok(isRead('ecs:DescribeTaskDefinition') && isRead('ecr:GetAuthorizationToken') && isRead('ecr:BatchGetImage'));
  assert.ok(!isRead('sqs:SendMessage') && !isRead('sns:Publish') && !isRead('sts:AssumeRole') && !isRead('dynamodb:PutItem'));
  const bad = {
    name: 'bad',
    tpl: { Resources: { P: { Type: 'AWS::IAM::Policy', Properties: { PolicyDocument: { Statement: [{ Sid: 'S', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: '*' }] } } } } },
  };
  const offending = [...statements(bad)].filter(([, s]) => list(s.Resource).includes('*') && list(s.Action).some((a) => !isRead(a)));
  assert.equal(offending.length, 1);
});
