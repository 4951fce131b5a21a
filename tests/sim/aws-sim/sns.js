'use strict';
// Amazon SNS over the query protocol (Action=..., XML responses): topics, and Publish with the real
// limits on Subject and Message. Published messages are kept for tests to read at /_sim/sns/messages.

const { AwsError, uuid, parseArn, isoSeconds } = require('./util');

// SNS caps a message, attributes included, at 256 KiB.
const MAX_MESSAGE_BYTES = 262144;
// The sim keeps this many published messages; older ones are dropped first.
const MAX_KEPT = 10000;

function invalidParameter(what) {
  return new AwsError('InvalidParameter', 'Invalid parameter: ' + what, { status: 400 });
}
function invalidParameterValue(message) {
  return new AwsError('ParameterValueInvalid', message, { status: 400 });
}
function notFound(message) {
  return new AwsError('NotFound', message, { status: 404 });
}

// indexedEntries reads query-protocol lists such as MessageAttributes.entry.1.Name into an array.
function indexedEntries(params, prefix) {
  const out = [];
  const re = new RegExp('^' + prefix.replace(/\./g, '\\.') + '\\.(\\d+)\\.(.+)$');
  for (const k of Object.keys(params)) {
    const m = re.exec(k);
    if (!m) continue;
    const i = Number(m[1]);
    out[i] = out[i] || {};
    out[i][m[2]] = params[k];
  }
  return out.filter(Boolean);
}

// subjectProblem says why a Subject is refused, or returns null. The API reference asks for
// "UTF-8 text with no line breaks or control characters, and less than 100 characters long"
// (older text: ASCII, beginning with a letter, number or punctuation). The sim applies the
// documented "less than 100"; moto#1503 reports that AWS itself accepts exactly 100 characters,
// so the sim is one character stricter than AWS, which errs on the safe side for clients.
function subjectProblem(subject) {
  if (subject === '') return 'empty';
  const chars = Array.from(subject);
  if (chars.length >= 100) return 'too long';
  for (const ch of chars) {
    const c = ch.codePointAt(0);
    if (c < 0x20 || c === 0x7f || (c >= 0x80 && c < 0xa0) || c === 0x2028 || c === 0x2029) return 'control character';
  }
  if (/^\s/.test(subject)) return 'leading white space';
  return null;
}

class SnsService {
  constructor(sim) {
    this.sim = sim;
    this.topics = new Map();
    this.messages = [];
  }

  reset() {
    this.topics.clear();
    this.messages = [];
  }

  async call(op, params, call) {
    switch (op) {
      case 'CreateTopic': return this.createTopic(params, call);
      case 'DeleteTopic': return this.deleteTopic(params, call);
      case 'ListTopics': return this.listTopics(params, call);
      case 'GetTopicAttributes': return this.getTopicAttributes(params, call);
      case 'Publish': return this.publish(params, call);
      default: return undefined;
    }
  }

  createTopic(params, call) {
    const name = params.Name;
    if (name === undefined) throw new AwsError('ValidationError', "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null");
    if (!/^[A-Za-z0-9_-]{1,256}$/.test(name)) {
      throw invalidParameter('Topic Name');
    }
    const arn = 'arn:aws:sns:' + call.region + ':' + call.account + ':' + name;
    if (!this.topics.has(arn)) {
      const attrs = {};
      for (const e of indexedEntries(params, 'Attributes.entry')) attrs[e.key] = e.value;
      this.topics.set(arn, { arn, name, account: call.account, region: call.region, attributes: attrs, created: Date.now() });
    }
    return { TopicArn: arn };
  }

  // topicFor finds the topic an ARN names, checking that the caller may publish to it.
  topicFor(arn, call, action) {
    const a = parseArn(arn);
    if (!a || a.service !== 'sns' || !/^\d{12}$/.test(a.account) || !a.resource) throw invalidParameter('TopicArn');
    if (a.account !== call.account) {
      // No topic policies are simulated, so another account's topic is never writable.
      throw new AwsError('AuthorizationError', 'User: ' + call.arn + ' is not authorized to perform: SNS:' + action + ' on resource: ' + arn +
        ' because no resource-based policy allows the SNS:' + action + ' action', { status: 403 });
    }
    if (a.region !== call.region) throw invalidParameter('TopicArn');
    const t = this.topics.get(arn);
    if (!t) throw notFound('Topic does not exist');
    return t;
  }

  deleteTopic(params, call) {
    const t = this.topicFor(params.TopicArn, call, 'DeleteTopic');
    this.topics.delete(t.arn);
    return null;
  }

  listTopics(params, call) {
    const topics = [];
    for (const t of this.topics.values()) {
      if (t.account === call.account && t.region === call.region) topics.push({ TopicArn: t.arn });
    }
    return { Topics: topics };
  }

  getTopicAttributes(params, call) {
    const t = this.topicFor(params.TopicArn, call, 'GetTopicAttributes');
    const attrs = Object.assign({
      TopicArn: t.arn, Owner: t.account, DisplayName: '', SubscriptionsConfirmed: '0', SubscriptionsPending: '0', SubscriptionsDeleted: '0',
    }, t.attributes);
    return { Attributes: { entry: Object.keys(attrs).map((k) => ({ key: k, value: attrs[k] })) } };
  }

  publish(params, call) {
    const arn = params.TopicArn || params.TargetArn;
    if (params.PhoneNumber !== undefined) throw invalidParameter('PhoneNumber (aws-sim does not simulate SMS)');
    if (arn === undefined) throw invalidParameter('TopicArn or TargetArn Reason: no value for required parameter');
    const message = params.Message;
    if (message === undefined) throw new AwsError('ValidationError', "1 validation error detected: Value null at 'message' failed to satisfy constraint: Member must not be null");
    const topic = this.topicFor(arn, call, 'Publish');
    if (message === '') throw invalidParameter('Empty message');
    if (params.Subject !== undefined && subjectProblem(params.Subject)) throw invalidParameter('Subject');
    if (params.MessageStructure !== undefined) {
      if (params.MessageStructure !== 'json') throw invalidParameter('MessageStructure');
      let parsed = null;
      try {
        parsed = JSON.parse(message);
      } catch (e) {
        parsed = null;
      }
      if (!parsed || typeof parsed !== 'object') throw invalidParameter('Message Structure - JSON message body failed to parse');
      if (typeof parsed.default !== 'string') throw invalidParameter('Message Structure - No default entry in JSON message body');
    }
    const attrs = {};
    let size = Buffer.byteLength(message, 'utf8');
    for (const e of indexedEntries(params, 'MessageAttributes.entry')) {
      const name = e.Name;
      const type = e['Value.DataType'];
      if (!name) throw invalidParameterValue('The message attribute name can not be empty.');
      if (!type || !/^(String|Number|Binary|String\.Array)(\..+)?$/.test(type)) {
        throw invalidParameterValue("The message attribute '" + name + "' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.");
      }
      const sv = e['Value.StringValue'];
      const bv = e['Value.BinaryValue'];
      if ((sv === undefined || sv === '') && (bv === undefined || bv === '')) {
        throw invalidParameterValue("The message attribute '" + name + "' must contain non-empty message attribute value for message attribute type '" + type.split('.')[0] + "'.");
      }
      if (type.startsWith('Number') && !/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(sv || '')) {
        throw invalidParameterValue("Could not cast message attribute '" + name + "' value to number.");
      }
      attrs[name] = bv !== undefined ? { Type: type, Value: bv } : { Type: type, Value: sv };
      size += Buffer.byteLength(name) + Buffer.byteLength(type) + Buffer.byteLength(String(bv !== undefined ? bv : sv));
    }
    if (Object.keys(attrs).length > 10) throw invalidParameterValue('Number of message attributes [' + Object.keys(attrs).length + '] exceeds the allowed maximum [10].');
    if (size > MAX_MESSAGE_BYTES) throw invalidParameter('Message too long');
    const id = uuid();
    this.messages.push({
      message_id: id,
      topic_arn: topic.arn,
      account: call.account,
      region: call.region,
      publisher: call.arn,
      subject: params.Subject === undefined ? null : params.Subject,
      message,
      message_structure: params.MessageStructure || null,
      message_attributes: attrs,
      timestamp: new Date().toISOString(),
    });
    if (this.messages.length > MAX_KEPT) this.messages.splice(0, this.messages.length - MAX_KEPT);
    return { MessageId: id };
  }

  // publishInternal records a message another service (EventBridge) sends to a topic.
  publishInternal(topicArn, message) {
    const t = this.topics.get(topicArn);
    if (!t) return { ok: false, error: 'topic ' + topicArn + ' does not exist' };
    const id = uuid();
    this.messages.push({
      message_id: id, topic_arn: t.arn, account: t.account, region: t.region, publisher: 'events.amazonaws.com',
      subject: null, message, message_structure: null, message_attributes: {}, timestamp: new Date().toISOString(),
    });
    return { ok: true, message_id: id };
  }

  adminMessages(topic) {
    return { now: isoSeconds(), messages: topic ? this.messages.filter((m) => m.topic_arn === topic) : this.messages.slice() };
  }

  adminClear(topic) {
    const before = this.messages.length;
    this.messages = topic ? this.messages.filter((m) => m.topic_arn !== topic) : [];
    return before - this.messages.length;
  }
}

SnsService.meta = {
  name: 'sns',
  signingName: 'sns',
  protocol: 'query',
  xmlns: 'http://sns.amazonaws.com/doc/2010-03-31/',
  version: '2010-03-31',
  errorFamily: 'query',
  operations: ['CreateTopic', 'DeleteTopic', 'ListTopics', 'GetTopicAttributes', 'Publish'],
};

module.exports = { SnsService, subjectProblem };
