'use strict';
// Fault injection: rules that make matching calls fail with a chosen AWS error, answer late, or
// lose their connection, so clients' retry and error paths can be tested.

const { AwsError } = require('./util');

// Service names accepted in fault rules and call-log filters, with their aliases.
const SERVICE_ALIASES = {
  sqs: 'sqs',
  sns: 'sns',
  sts: 'sts',
  ecs: 'ecs',
  ecr: 'ecr',
  secretsmanager: 'secretsmanager',
  secrets: 'secretsmanager',
  events: 'events',
  eventbridge: 'events',
  dynamodb: 'dynamodb',
  credentials: 'credentials',
  'container-credentials': 'credentials',
  '*': '*',
};

// Default HTTP status for the usual error types when a rule names no status.
const DEFAULT_STATUS = {
  ThrottlingException: 400,
  Throttling: 400,
  ThrottledException: 400,
  RequestThrottled: 403,
  RequestLimitExceeded: 400,
  TooManyRequestsException: 400,
  ProvisionedThroughputExceededException: 400,
  RequestThrottledException: 400,
  LimitExceededException: 400,
  ServiceUnavailable: 503,
  ServiceUnavailableException: 503,
  InternalFailure: 500,
  InternalError: 500,
  InternalServerError: 500,
  InternalServiceError: 500,
  ServerException: 500,
  InternalServiceErrorException: 500,
};

function canonicalService(name) {
  return SERVICE_ALIASES[String(name || '').toLowerCase()] || null;
}

class Faults {
  constructor() {
    this.rules = [];
    this.nextId = 1;
  }

  reset() {
    this.rules = [];
  }

  // add validates and stores a rule, returning it. It throws an AwsError on a bad rule.
  add(spec) {
    const service = canonicalService(spec.service);
    if (!service) throw new AwsError('InvalidFault', 'service must be one of ' + Object.keys(SERVICE_ALIASES).join(', '));
    const hasError = spec.type !== undefined || spec.status !== undefined;
    if (!hasError && !spec.latency_ms && !spec.reset) {
      throw new AwsError('InvalidFault', 'a fault needs type/status, latency_ms or reset');
    }
    const rate = spec.rate === undefined ? 1 : Number(spec.rate);
    if (!(rate >= 0 && rate <= 1)) throw new AwsError('InvalidFault', 'rate must be between 0 and 1');
    const count = spec.count === undefined || spec.count === null ? null : Number(spec.count);
    if (count !== null && !(Number.isInteger(count) && count > 0)) throw new AwsError('InvalidFault', 'count must be a positive integer');
    const type = spec.type || (hasError ? (Number(spec.status) >= 500 ? 'InternalFailure' : 'ThrottlingException') : null);
    const status = spec.status !== undefined ? Number(spec.status) : (type ? DEFAULT_STATUS[type] || (/Exception$/.test(type) ? 400 : 500) : null);
    if (status !== null && !(status >= 400 && status <= 599)) throw new AwsError('InvalidFault', 'status must be 4xx or 5xx');
    const rule = {
      id: String(this.nextId++),
      service,
      operation: spec.operation || null,
      type,
      status,
      message: spec.message || (type ? 'Injected fault: ' + type : null),
      rate,
      count,
      latency_ms: Number(spec.latency_ms) || 0,
      reset: !!spec.reset,
      fired: 0,
    };
    this.rules.push(rule);
    return rule;
  }

  remove(id) {
    const before = this.rules.length;
    this.rules = this.rules.filter((r) => r.id !== String(id));
    return this.rules.length !== before;
  }

  list() {
    return this.rules.map((r) => Object.assign({}, r));
  }

  // take returns the first rule that fires for this call, counting it down, or null.
  take(service, operation) {
    for (const r of this.rules) {
      if (r.service !== '*' && r.service !== service) continue;
      if (r.operation && r.operation !== operation) continue;
      if (r.rate < 1 && Math.random() >= r.rate) continue;
      r.fired++;
      if (r.count !== null) {
        r.count--;
        if (r.count <= 0) this.rules = this.rules.filter((x) => x !== r);
      }
      return r;
    }
    return null;
  }

  // errorFor builds the AwsError a fired rule answers with, or null for latency-only rules.
  static errorFor(rule) {
    if (!rule.type) return null;
    const code = rule.type.split('#').pop();
    return new AwsError(code, rule.message, {
      status: rule.status,
      type: rule.type.indexOf('#') >= 0 ? rule.type : null,
      queryCode: code,
    });
  }
}

module.exports = { Faults, canonicalService };
