'use strict';
// Amazon EventBridge (AWSEvents.*, JSON 1.1): event buses, rules with event patterns, SQS / SNS /
// event-bus targets, PutEvents, and delivery of matching events to targets as AWS delivers them.
// /_sim/events/deliver injects events that AWS services (CloudTrail) would put on a bus.

const { AwsError, uuid, isoSeconds, parseArn, deepClone } = require('./util');
const pattern = require('./event-pattern');

const CLOUDTRAIL_DETAIL_TYPE = 'AWS API Call via CloudTrail';
// The sim keeps this many delivery records for /_sim/events/log.
const MAX_LOG = 2000;

function notFound(message) {
  return new AwsError('ResourceNotFoundException', message);
}
function validation(message) {
  return new AwsError('ValidationException', message);
}

// selectPath reads a JSONPath such as $.detail.requestParameters or $.detail['event-name'].
function selectPath(obj, path) {
  if (path === '$') return obj;
  if (typeof path !== 'string' || !path.startsWith('$')) return undefined;
  const re = /\.([A-Za-z0-9_@$-]+)|\[['"]([^'"]+)['"]\]|\[(\d+)\]/g;
  let rest = path.slice(1);
  let cur = obj;
  let m;
  let consumed = 0;
  while ((m = re.exec(rest)) !== null) {
    if (m.index !== consumed) return undefined;
    consumed = re.lastIndex;
    const key = m[1] !== undefined ? m[1] : m[2] !== undefined ? m[2] : Number(m[3]);
    if (cur === null || typeof cur !== 'object' || !(key in cur)) return undefined;
    cur = cur[key];
  }
  return consumed === rest.length ? cur : undefined;
}

class EventsService {
  constructor(sim) {
    this.sim = sim;
    this.buses = new Map();
    this.log = [];
  }

  reset() {
    this.buses.clear();
    this.log = [];
  }

  static busKey(account, region, name) {
    return account + '/' + region + '/' + name;
  }

  // bus returns a bus, creating the default bus on first use as every account has one.
  bus(account, region, name, create) {
    const n = name || 'default';
    const key = EventsService.busKey(account, region, n);
    let b = this.buses.get(key);
    if (!b && (n === 'default' || create)) {
      b = { name: n, account, region, arn: 'arn:aws:events:' + region + ':' + account + ':event-bus/' + n, rules: new Map() };
      this.buses.set(key, b);
    }
    return b || null;
  }

  // busFor resolves an EventBusName (a name or an ARN) for the caller.
  busFor(nameOrArn, call) {
    let account = call.account;
    let region = call.region;
    let name = nameOrArn || 'default';
    if (String(name).startsWith('arn:')) {
      const a = parseArn(name);
      if (!a || a.service !== 'events' || !a.resource.startsWith('event-bus/')) throw validation('Parameter EventBusName is not valid.');
      if (a.account !== call.account) {
        throw new AwsError('AccessDeniedException', 'User: ' + call.arn + ' is not authorized to perform: events:PutRule on resource: ' + nameOrArn);
      }
      account = a.account;
      region = a.region;
      name = a.resource.slice('event-bus/'.length);
    }
    const b = region === call.region ? this.bus(account, region, name, false) : null;
    if (!b) throw notFound('Event bus ' + name + ' does not exist.');
    return b;
  }

  async call(op, input, call) {
    switch (op) {
      case 'CreateEventBus': return this.createEventBus(input, call);
      case 'DeleteEventBus': return this.deleteEventBus(input, call);
      case 'PutRule': return this.putRule(input, call);
      case 'DescribeRule': return this.describeRule(input, call);
      case 'ListRules': return this.listRules(input, call);
      case 'DeleteRule': return this.deleteRule(input, call);
      case 'EnableRule': return this.setState(input, call, 'ENABLED');
      case 'DisableRule': return this.setState(input, call, 'DISABLED');
      case 'PutTargets': return this.putTargets(input, call);
      case 'ListTargetsByRule': return this.listTargets(input, call);
      case 'RemoveTargets': return this.removeTargets(input, call);
      case 'PutEvents': return this.putEvents(input, call);
      case 'TestEventPattern': return this.testEventPattern(input);
      default: return undefined;
    }
  }

  createEventBus(input, call) {
    if (!input.Name || !/^[/.\-_A-Za-z0-9]{1,256}$/.test(input.Name) || input.Name === 'default') {
      throw validation('Parameter Name is not valid.');
    }
    if (this.bus(call.account, call.region, input.Name, false)) {
      throw new AwsError('ResourceAlreadyExistsException', 'Event bus ' + input.Name + ' already exists.');
    }
    return { EventBusArn: this.bus(call.account, call.region, input.Name, true).arn };
  }

  deleteEventBus(input, call) {
    if (input.Name === 'default') throw validation('Cannot delete event bus default.');
    this.buses.delete(EventsService.busKey(call.account, call.region, input.Name));
    return null;
  }

  ruleArn(b, name) {
    return 'arn:aws:events:' + b.region + ':' + b.account + ':rule/' + (b.name === 'default' ? '' : b.name + '/') + name;
  }

  putRule(input, call) {
    const name = input.Name;
    if (!name || !/^[.\-_A-Za-z0-9]{1,64}$/.test(name)) {
      throw validation("1 validation error detected: Value '" + name + "' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+");
    }
    if (input.EventPattern === undefined && input.ScheduleExpression === undefined) {
      throw validation('Parameter(s) EventPattern or ScheduleExpression must be specified.');
    }
    let parsed = null;
    if (input.EventPattern !== undefined) {
      try {
        parsed = JSON.parse(input.EventPattern);
        pattern.validate(parsed);
      } catch (e) {
        throw new AwsError('InvalidEventPatternException', 'Event pattern is not valid. Reason: ' + e.message);
      }
    }
    const state = input.State || 'ENABLED';
    if (['ENABLED', 'DISABLED', 'ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS'].indexOf(state) < 0) {
      throw validation("1 validation error detected: Value '" + state + "' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [DISABLED, ENABLED, ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS]");
    }
    const b = this.busFor(input.EventBusName, call);
    const existing = b.rules.get(name);
    const rule = {
      Name: name,
      Arn: this.ruleArn(b, name),
      EventPattern: input.EventPattern,
      ScheduleExpression: input.ScheduleExpression,
      State: state,
      Description: input.Description,
      RoleArn: input.RoleArn,
      EventBusName: b.name,
      pattern: parsed,
      targets: existing ? existing.targets : new Map(),
    };
    b.rules.set(name, rule);
    return { RuleArn: rule.Arn };
  }

  rule(input, call, nameField) {
    const b = this.busFor(input.EventBusName, call);
    const r = b.rules.get(input[nameField]);
    if (!r) throw notFound('Rule ' + input[nameField] + ' does not exist on EventBus ' + b.name + '.');
    return r;
  }

  static ruleView(r) {
    const out = { Name: r.Name, Arn: r.Arn, State: r.State, EventBusName: r.EventBusName };
    for (const k of ['EventPattern', 'ScheduleExpression', 'Description', 'RoleArn']) if (r[k] !== undefined) out[k] = r[k];
    return out;
  }

  describeRule(input, call) {
    return EventsService.ruleView(this.rule(input, call, 'Name'));
  }

  listRules(input, call) {
    const b = this.busFor(input.EventBusName, call);
    const prefix = input.NamePrefix || '';
    const rules = Array.from(b.rules.values()).filter((r) => r.Name.startsWith(prefix)).sort((x, y) => (x.Name < y.Name ? -1 : 1));
    return { Rules: rules.map(EventsService.ruleView) };
  }

  deleteRule(input, call) {
    const b = this.busFor(input.EventBusName, call);
    const r = b.rules.get(input.Name);
    if (!r) return null;
    if (r.targets.size && !input.Force) throw validation('Rule can\'t be deleted since it has targets.');
    b.rules.delete(input.Name);
    return null;
  }

  setState(input, call, state) {
    this.rule(input, call, 'Name').State = state;
    return null;
  }

  putTargets(input, call) {
    const r = this.rule(input, call, 'Rule');
    const targets = input.Targets || [];
    if (!targets.length || targets.length > 10) {
      throw validation("1 validation error detected: Value at 'targets' failed to satisfy constraint: Member must have length " + (targets.length ? 'less than or equal to 10' : 'greater than or equal to 1'));
    }
    const failed = [];
    for (const t of targets) {
      const fail = (code, message) => failed.push({ TargetId: t.Id, ErrorCode: code, ErrorMessage: message });
      const a = parseArn(t.Arn);
      const set = [t.Input, t.InputPath, t.InputTransformer].filter((x) => x !== undefined).length;
      if (!t.Id || !/^[.\-_A-Za-z0-9]{1,64}$/.test(t.Id)) fail('ValidationException', 'Target Id is not valid.');
      else if (!a) fail('ValidationException', 'Parameter ' + t.Arn + ' is not valid.');
      else if (set > 1) fail('ValidationException', 'Only one of Input, InputPath, or InputTransformer must be provided.');
      else if (t.Input !== undefined && !isJson(t.Input)) fail('ValidationException', 'Parameter Input is not valid.');
      else if (t.InputPath !== undefined && !/^\$(\.|\[|$)/.test(t.InputPath)) fail('ValidationException', 'Parameter InputPath is not valid.');
      else if (['sqs', 'sns', 'events'].indexOf(a.service) < 0) fail('ValidationException', 'aws-sim delivers to SQS queues, SNS topics and event buses only: ' + t.Arn);
      else if (a.service === 'sqs' && a.region !== call.region) fail('ValidationException', 'Target ' + t.Arn + ' is not in the same Region as the rule.');
      else r.targets.set(t.Id, deepClone(t));
    }
    return { FailedEntryCount: failed.length, FailedEntries: failed };
  }

  listTargets(input, call) {
    const r = this.rule(input, call, 'Rule');
    return { Targets: Array.from(r.targets.values()).map(deepClone) };
  }

  removeTargets(input, call) {
    const r = this.rule(input, call, 'Rule');
    // An id that is not there is not an error: RemoveTargets simply removes nothing for it.
    for (const id of input.Ids || []) r.targets.delete(id);
    return { FailedEntryCount: 0, FailedEntries: [] };
  }

  testEventPattern(input) {
    let p;
    try {
      p = JSON.parse(input.EventPattern);
      pattern.validate(p);
    } catch (e) {
      throw new AwsError('InvalidEventPatternException', 'Event pattern is not valid. Reason: ' + e.message);
    }
    let ev;
    try {
      ev = JSON.parse(input.Event);
    } catch (e) {
      throw validation('Parameter Event is not valid.');
    }
    return { Result: pattern.matches(p, ev) };
  }

  // putEvents checks each entry as PutEvents does and delivers the good ones.
  putEvents(input, call) {
    const entries = input.Entries || [];
    if (!entries.length || entries.length > 10) {
      throw validation("1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length " + (entries.length ? 'less than or equal to 10' : 'greater than or equal to 1'));
    }
    const results = [];
    let failed = 0;
    for (const e of entries) {
      const err = (code, message) => {
        failed++;
        results.push({ ErrorCode: code, ErrorMessage: message });
      };
      if (!e.Source) { err('InvalidArgument', 'Parameter Source is not valid. Reason: Source is a required argument.'); continue; }
      if (!e.DetailType) { err('InvalidArgument', 'Parameter DetailType is not valid. Reason: DetailType is a required argument.'); continue; }
      if (e.Detail === undefined) { err('InvalidArgument', 'Parameter Detail is not valid. Reason: Detail is a required argument.'); continue; }
      // Only AWS services may put events with an "aws." source.
      if (/^aws\./.test(e.Source)) { err('NotAuthorizedForSourceException', 'Not authorized for the source.'); continue; }
      let detail;
      try {
        detail = JSON.parse(e.Detail);
      } catch (x) {
        detail = undefined;
      }
      if (!detail || typeof detail !== 'object' || Array.isArray(detail)) { err('MalformedDetail', 'Detail is malformed.'); continue; }
      const size = Buffer.byteLength(e.Source) + Buffer.byteLength(e.DetailType) + Buffer.byteLength(e.Detail) +
        (e.Resources || []).reduce((n, r) => n + Buffer.byteLength(r), 0);
      if (size > 256 * 1024) { err('InvalidArgument', 'Total size of the entries in the request is over the limit.'); continue; }
      let b;
      try {
        b = this.busFor(e.EventBusName, call);
      } catch (x) {
        err('InvalidArgument', 'Event bus ' + (e.EventBusName || 'default') + ' does not exist.');
        continue;
      }
      const time = e.Time !== undefined ? new Date(typeof e.Time === 'number' ? e.Time * 1000 : e.Time).getTime() : Date.now();
      const event = {
        version: '0',
        id: uuid(),
        'detail-type': e.DetailType,
        source: e.Source,
        account: call.account,
        time: isoSeconds(Number.isFinite(time) ? time : Date.now()),
        region: call.region,
        resources: e.Resources || [],
        detail,
      };
      this.deliver(b, event, 0);
      results.push({ EventId: event.id });
    }
    return { FailedEntryCount: failed, Entries: results };
  }

  // eventFromCloudTrail builds the envelope EventBridge gives a CloudTrail API-call record
  // (aws-wire.md §1.2-1.3), filling the record fields CloudTrail always sets.
  static eventFromCloudTrail(spec, defaults) {
    const d = deepClone(spec.detail || {});
    const account = String(spec.account || d.recipientAccountId || (d.userIdentity && d.userIdentity.accountId) || defaults.account);
    const region = spec.region || d.awsRegion || defaults.region;
    const eventName = spec.event_name || d.eventName;
    const eventSource = spec.event_source || d.eventSource || 'ecs.amazonaws.com';
    const eventTime = d.eventTime || isoSeconds();
    const filled = Object.assign({
      eventVersion: '1.11',
      userIdentity: { type: 'IAMUser', accountId: account, arn: 'arn:aws:iam::' + account + ':user/qfs-sim' },
      eventTime,
      eventSource,
      eventName,
      awsRegion: region,
      sourceIPAddress: '203.0.113.10',
      userAgent: 'aws-sim',
      requestParameters: null,
      responseElements: null,
      requestID: uuid(),
      eventID: uuid(),
      readOnly: /^(Describe|Get|List)/.test(eventName || ''),
      eventType: 'AwsApiCall',
      managementEvent: true,
      recipientAccountId: account,
      eventCategory: 'Management',
    }, d);
    filled.eventName = eventName;
    filled.eventSource = eventSource;
    filled.awsRegion = filled.awsRegion || region;
    return {
      version: '0',
      id: uuid(),
      'detail-type': CLOUDTRAIL_DETAIL_TYPE,
      source: 'aws.' + eventSource.split('.')[0],
      account,
      time: eventTime,
      region,
      resources: [],
      detail: filled,
    };
  }

  // adminDeliver puts an event on a bus as an AWS service would: body {event} or a full event,
  // or {detail, account?, region?, event_name?} for a CloudTrail API call; bus names the bus.
  adminDeliver(body) {
    const defaults = { account: this.sim.hubAccount, region: this.sim.region };
    let event;
    if (body.event) event = deepClone(body.event);
    else if (body['detail-type'] !== undefined) event = deepClone(body);
    else if (body.detail) event = EventsService.eventFromCloudTrail(body, defaults);
    else throw new AwsError('InvalidEvent', 'give {event: {...}}, a full event, or {detail: <CloudTrail record>, account, region}');
    if (!event.version) event.version = '0';
    if (!event.id) event.id = uuid();
    if (!event.account) event.account = defaults.account;
    if (!event.region) event.region = defaults.region;
    if (!event.time) event.time = isoSeconds();
    if (!event.resources) event.resources = [];
    if (!event.source || !event['detail-type'] || typeof event.detail !== 'object') {
      throw new AwsError('InvalidEvent', 'an event needs source, detail-type and an object detail');
    }
    // Key order as EventBridge serialises the envelope.
    const ordered = {};
    for (const k of ['version', 'id', 'detail-type', 'source', 'account', 'time', 'region', 'resources', 'detail']) ordered[k] = event[k];
    for (const k of Object.keys(event)) if (!(k in ordered)) ordered[k] = event[k];
    const account = String(body.bus_account || event.account);
    const region = body.bus_region || event.region;
    let b;
    if (body.bus && String(body.bus).startsWith('arn:')) {
      const a = parseArn(body.bus);
      b = a ? this.bus(a.account, a.region, a.resource.replace(/^event-bus\//, ''), false) : null;
    } else {
      b = this.bus(account, region, body.bus || 'default', false);
    }
    if (!b) throw new AwsError('ResourceNotFoundException', 'Event bus ' + (body.bus || 'default') + ' does not exist.', { status: 404 });
    const deliveries = this.deliver(b, ordered, 0);
    return { event: ordered, bus: b.arn, deliveries };
  }

  // ruleMatches applies a rule's state and pattern. A rule in the ENABLED state does not receive
  // read-only CloudTrail management events; ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS does.
  static ruleMatches(r, event) {
    if (r.State === 'DISABLED' || !r.pattern) return false;
    if (r.State === 'ENABLED' && event['detail-type'] === CLOUDTRAIL_DETAIL_TYPE && event.detail &&
        event.detail.readOnly === true && event.detail.managementEvent !== false) {
      return false;
    }
    return pattern.matches(r.pattern, event);
  }

  // payload computes what a target receives: the event, or Input, InputPath or InputTransformer.
  static payload(t, event, rule) {
    if (t.Input !== undefined) return t.Input;
    if (t.InputPath !== undefined) {
      const v = selectPath(event, t.InputPath);
      return v === undefined ? '' : JSON.stringify(v);
    }
    if (t.InputTransformer) {
      const vars = {};
      const paths = t.InputTransformer.InputPathsMap || {};
      for (const k of Object.keys(paths)) vars[k] = selectPath(event, paths[k]);
      vars['aws.events.rule-arn'] = rule.Arn;
      vars['aws.events.rule-name'] = rule.Name;
      vars['aws.events.event.ingestion-time'] = event.time;
      vars['aws.events.event.json'] = event;
      return String(t.InputTransformer.InputTemplate || '').replace(/<([A-Za-z0-9_.\-]+)>/g, (all, name) => {
        if (!(name in vars)) return all;
        const v = vars[name];
        if (v === undefined || v === null) return 'null';
        return typeof v === 'string' ? JSON.stringify(v).slice(1, -1) : JSON.stringify(v);
      });
    }
    return JSON.stringify(event);
  }

  // deliver sends an event to the targets of every matching rule on a bus. Events forwarded to
  // another bus travel one hop only, keeping their account and region, as cross-account and
  // cross-Region routing does. It returns one record per attempted delivery.
  deliver(bus, event, hop) {
    const out = [];
    for (const r of bus.rules.values()) {
      if (!EventsService.ruleMatches(r, event)) continue;
      for (const t of r.targets.values()) {
        const rec = { time: new Date().toISOString(), event_id: event.id, bus: bus.arn, rule: r.Arn, target_id: t.Id, target: t.Arn, ok: false };
        const a = parseArn(t.Arn);
        const body = EventsService.payload(t, event, r);
        if (a.service === 'sqs') {
          Object.assign(rec, this.sim.services.sqs.enqueueInternal(t.Arn, body, 'AIDAIEVENTBRIDGESIM'));
        } else if (a.service === 'sns') {
          Object.assign(rec, this.sim.services.sns.publishInternal(t.Arn, body));
        } else if (a.service === 'events') {
          if (hop >= 1) {
            rec.error = 'events received from another bus are not forwarded again (one hop)';
          } else {
            const target = this.bus(a.account, a.region, a.resource.replace(/^event-bus\//, ''), false);
            if (!target) rec.error = 'event bus ' + t.Arn + ' does not exist';
            else {
              rec.ok = true;
              rec.forwarded = this.deliver(target, event, hop + 1);
            }
          }
        }
        this.log.push(rec);
        if (this.log.length > MAX_LOG) this.log.splice(0, this.log.length - MAX_LOG);
        out.push(rec);
      }
    }
    return out;
  }

  adminRules() {
    const out = [];
    for (const b of this.buses.values()) {
      for (const r of b.rules.values()) {
        out.push(Object.assign(EventsService.ruleView(r), { bus_arn: b.arn, targets: Array.from(r.targets.values()) }));
      }
    }
    return out;
  }
}

function isJson(s) {
  try {
    JSON.parse(s);
    return true;
  } catch (e) {
    return false;
  }
}

EventsService.meta = {
  name: 'events',
  signingName: 'events',
  protocol: 'json',
  targetPrefix: 'AWSEvents',
  contentType: 'application/x-amz-json-1.1',
  errorFamily: 'coral-json',
  operations: ['CreateEventBus', 'DeleteEventBus', 'PutRule', 'DescribeRule', 'ListRules', 'DeleteRule', 'EnableRule', 'DisableRule',
    'PutTargets', 'ListTargetsByRule', 'RemoveTargets', 'PutEvents', 'TestEventPattern'],
};

module.exports = { EventsService, selectPath };
