'use strict';
// Amazon ECS DescribeTaskDefinition (AmazonEC2ContainerServiceV20141113.*, JSON 1.1) over seeded
// task definitions. A task definition belongs to the account and region of its ARN, and is only
// described for credentials of that account, signed for that region.

const { AwsError, parseArn, deepClone } = require('./util');

// ECS answers an unknown task definition with this ClientException (aws-wire.md §2.5).
function unableToDescribe() {
  return new AwsError('ClientException', 'Unable to describe task definition.');
}

const ARN_RE = /^arn:(aws[a-z-]*):ecs:([a-z0-9-]+):(\d{12}):task-definition\/([A-Za-z0-9_-]{1,255}):(\d+)$/;

class EcsService {
  constructor(sim) {
    this.sim = sim;
    this.defs = new Map();
  }

  reset() {
    this.defs.clear();
  }

  // addTaskDefinition stores a TaskDefinition shape. It takes its account, region, family and
  // revision from taskDefinitionArn, or builds the ARN from family plus account/region (the next
  // revision when none is given). `tags` ([{key,value}]) are kept for include=["TAGS"].
  addTaskDefinition(spec, defaults) {
    const td = deepClone(spec);
    const tags = td.tags || [];
    delete td.tags;
    let m = td.taskDefinitionArn ? ARN_RE.exec(td.taskDefinitionArn) : null;
    if (td.taskDefinitionArn && !m) throw new AwsError('InvalidTaskDefinition', 'taskDefinitionArn is not an ECS task definition ARN: ' + td.taskDefinitionArn);
    if (!m) {
      const account = String(td.account || defaults.account);
      const region = td.region || defaults.region;
      if (!td.family || !/^[A-Za-z0-9_-]{1,255}$/.test(td.family)) throw new AwsError('InvalidTaskDefinition', 'a task definition needs taskDefinitionArn or a valid family');
      let rev = td.revision;
      if (rev === undefined) {
        rev = 1;
        for (const d of this.defs.values()) {
          if (d.account === account && d.region === region && d.td.family === td.family) rev = Math.max(rev, d.td.revision + 1);
        }
      }
      td.taskDefinitionArn = 'arn:aws:ecs:' + region + ':' + account + ':task-definition/' + td.family + ':' + rev;
      m = ARN_RE.exec(td.taskDefinitionArn);
    }
    delete td.account;
    delete td.region;
    td.family = m[4];
    td.revision = Number(m[5]);
    if (!td.status) td.status = 'ACTIVE';
    if (!Array.isArray(td.containerDefinitions)) td.containerDefinitions = [];
    if (td.registeredAt === undefined) td.registeredAt = Date.now() / 1000;
    const entry = { account: m[3], region: m[2], td, tags };
    this.defs.set(td.taskDefinitionArn, entry);
    return td;
  }

  list() {
    return Array.from(this.defs.values()).map((d) => d.td);
  }

  async call(op, input, call) {
    if (op === 'DescribeTaskDefinition') return this.describe(input, call);
    return undefined;
  }

  describe(input, call) {
    const ref = input.taskDefinition;
    if (ref === undefined || ref === null || ref === '') throw new AwsError('ClientException', 'Task Definition can not be blank.');
    if (typeof ref !== 'string') throw new AwsError('SerializationException', 'Start of structure or map found where not expected.', { type: 'com.amazon.coral.service#SerializationException' });
    let found = null;
    if (ref.startsWith('arn:')) {
      const a = parseArn(ref);
      if (!a || a.service !== 'ecs') throw unableToDescribe();
      if (a.account !== call.account) {
        // Another account's task definition: the caller's identity has no access there.
        throw new AwsError('AccessDeniedException', 'User: ' + call.arn + ' is not authorized to perform: ecs:DescribeTaskDefinition on resource: ' + ref +
          ' because no identity-based policy allows the ecs:DescribeTaskDefinition action');
      }
      const e = this.defs.get(ref);
      // An ARN of another Region names nothing at this Region's endpoint.
      if (e && e.region === call.region) found = e;
    } else {
      const m = /^([A-Za-z0-9_-]{1,255})(?::(\d+))?$/.exec(ref);
      if (!m) throw unableToDescribe();
      let best = null;
      for (const e of this.defs.values()) {
        if (e.account !== call.account || e.region !== call.region || e.td.family !== m[1]) continue;
        if (m[2] !== undefined) {
          if (e.td.revision === Number(m[2])) best = e;
        } else if (e.td.status === 'ACTIVE' && (!best || e.td.revision > best.td.revision)) {
          best = e;
        }
      }
      found = best;
    }
    if (!found) throw unableToDescribe();
    const out = { taskDefinition: deepClone(found.td) };
    const include = input.include || [];
    if (include.indexOf('TAGS') >= 0) out.tags = deepClone(found.tags);
    return out;
  }
}

EcsService.meta = {
  name: 'ecs',
  signingName: 'ecs',
  protocol: 'json',
  targetPrefix: 'AmazonEC2ContainerServiceV20141113',
  contentType: 'application/x-amz-json-1.1',
  errorFamily: 'coral-json',
  operations: ['DescribeTaskDefinition'],
};

module.exports = { EcsService };
