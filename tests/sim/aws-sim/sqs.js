'use strict';
// Amazon SQS over the JSON protocol (AmazonSQS.*, application/x-amz-json-1.0): standard queues with
// visibility timeouts, long polling, delays, retention, batches and redrive to a dead-letter queue.
//
// The sim implements SQS itself rather than embedding local-aws-sqs: that package serves a single
// account per server and finds a queue by the last segment of QueueUrl only, so queues of two
// accounts with one name would collide, and its QueueUrls carry its own port, not the sim's.

const { AwsError, md5Hex, uuid, parseArn } = require('./util');

// Queue attribute bounds from the SQS API reference (MaximumMessageSize now reaches 1 MiB).
const ATTRIBUTE_RULES = {
  DelaySeconds: { min: 0, max: 900, def: '0' },
  MaximumMessageSize: { min: 1024, max: 1048576, def: '262144' },
  MessageRetentionPeriod: { min: 60, max: 1209600, def: '345600' },
  ReceiveMessageWaitTimeSeconds: { min: 0, max: 20, def: '0' },
  VisibilityTimeout: { min: 0, max: 43200, def: '30' },
};
const FREE_ATTRIBUTES = ['Policy', 'RedrivePolicy', 'RedriveAllowPolicy', 'KmsMasterKeyId', 'KmsDataKeyReusePeriodSeconds', 'SqsManagedSseEnabled'];
const SYSTEM_ATTRIBUTES = ['ApproximateReceiveCount', 'ApproximateFirstReceiveTimestamp', 'SentTimestamp', 'SenderId',
  'AWSTraceHeader', 'DeadLetterQueueSourceArn', 'MessageDeduplicationId', 'MessageGroupId', 'SequenceNumber'];
const BATCH_MAX_BYTES = 1048576;
const HANDLE_PREFIX = 'AQEB';

// sqsError builds an SQS JSON error: __type is the new shape name and x-amzn-query-error carries the
// legacy query code, as aws-wire.md §2.1 and the SQS JSON docs describe.
function sqsError(shape, legacy, message, status) {
  return new AwsError(shape, message, { status: status || 400, type: 'com.amazonaws.sqs#' + shape, queryCode: legacy || shape });
}
function invalidParameter(message) {
  return new AwsError('InvalidParameterValue', message, {
    type: 'com.amazon.coral.service#InvalidParameterValueException', queryCode: 'InvalidParameterValue',
  });
}
function missingParameter(name) {
  return new AwsError('MissingParameter', 'The request must contain the parameter ' + name + '.', {
    type: 'com.amazon.coral.service#MissingRequiredParameterException', queryCode: 'MissingParameter',
  });
}
function noQueue() {
  return sqsError('QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue', 'The specified queue does not exist.');
}

// md5OfAttributes is the MD5 digest SQS computes over message attributes: names sorted, each name,
// data type and value length-prefixed (4-byte big-endian), with a transport byte of 1 for strings
// and numbers and 2 for binary.
function md5OfAttributes(attrs) {
  const names = Object.keys(attrs || {}).sort();
  if (!names.length) return null;
  const parts = [];
  const lenPrefixed = (buf) => {
    const l = Buffer.alloc(4);
    l.writeUInt32BE(buf.length, 0);
    parts.push(l, buf);
  };
  for (const n of names) {
    const a = attrs[n];
    lenPrefixed(Buffer.from(n, 'utf8'));
    lenPrefixed(Buffer.from(a.DataType, 'utf8'));
    if (a.BinaryValue !== undefined) {
      parts.push(Buffer.from([2]));
      lenPrefixed(Buffer.from(a.BinaryValue, 'base64'));
    } else {
      parts.push(Buffer.from([1]));
      lenPrefixed(Buffer.from(String(a.StringValue), 'utf8'));
    }
  }
  return md5Hex(Buffer.concat(parts));
}

function attributesSize(attrs) {
  let n = 0;
  for (const k of Object.keys(attrs || {})) {
    const a = attrs[k];
    n += Buffer.byteLength(k) + Buffer.byteLength(a.DataType || '');
    n += a.BinaryValue !== undefined ? Buffer.from(a.BinaryValue, 'base64').length : Buffer.byteLength(String(a.StringValue || ''));
  }
  return n;
}

// Characters SQS allows in a message body.
function invalidBodyChar(body) {
  for (const ch of body) {
    const c = ch.codePointAt(0);
    const ok = c === 0x9 || c === 0xa || c === 0xd || (c >= 0x20 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff);
    if (!ok) return c;
  }
  return -1;
}

function intParam(value, name, min, max, reason) {
  if (value === undefined || value === null) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw invalidParameter('Value ' + value + ' for parameter ' + name + ' is invalid. Reason: ' + reason);
  }
  return n;
}

// parseQueueUrl matches a queue URL's path: [path, account, name], or null. Clients send the same
// few URLs on every call, so the answers are kept (a bounded cache: cleared when it fills).
const queueUrlCache = new Map();
function parseQueueUrl(queueUrl) {
  let m = queueUrlCache.get(queueUrl);
  if (m !== undefined) return m;
  let path;
  try {
    path = new URL(queueUrl).pathname;
  } catch (e) {
    path = null;
  }
  m = (path && /^\/(\d{12})\/([A-Za-z0-9_-]{1,80}(?:\.fifo)?)\/?$/.exec(path)) || null;
  if (queueUrlCache.size >= 1000) queueUrlCache.clear();
  queueUrlCache.set(queueUrl, m);
  return m;
}

class SqsService {
  constructor(sim) {
    this.sim = sim;
    this.queues = new Map();
  }

  reset() {
    for (const q of this.queues.values()) this._wakeAll(q, true);
    this.queues.clear();
  }

  // close answers every pending long poll with no messages, for shutdown.
  close() {
    for (const q of this.queues.values()) this._wakeAll(q, true);
  }

  queueUrl(account, name) {
    return this.sim.url + '/' + account + '/' + name;
  }

  static key(account, region, name) {
    return account + '/' + region + '/' + name;
  }

  // resolveQueue finds the queue a QueueUrl names, for the caller's account and signing region.
  resolveQueue(queueUrl, call) {
    if (queueUrl === undefined || queueUrl === null || queueUrl === '') throw missingParameter('QueueUrl');
    const m = parseQueueUrl(String(queueUrl));
    if (!m) throw sqsError('InvalidAddress', 'InvalidAddress', 'The address ' + queueUrl + ' is not valid for this endpoint.');
    if (m[1] !== call.account) {
      // Without a queue policy, another account's queue is out of reach; AWS checks this before existence.
      throw new AwsError('AccessDenied', 'Access to the resource ' + queueUrl + ' is denied.', {
        status: 403, type: 'com.amazon.coral.service#AccessDeniedException', queryCode: 'AccessDenied',
      });
    }
    const q = this.queues.get(SqsService.key(m[1], call.region, m[2]));
    if (!q) throw noQueue();
    this._expire(q);
    return q;
  }

  findByArn(arn) {
    const a = parseArn(arn);
    if (!a || a.service !== 'sqs') return null;
    return this.queues.get(SqsService.key(a.account, a.region, a.resource)) || null;
  }

  async call(op, input, call) {
    switch (op) {
      case 'CreateQueue': return this.createQueue(input, call);
      case 'GetQueueUrl': return this.getQueueUrl(input, call);
      case 'ListQueues': return this.listQueues(input, call);
      case 'DeleteQueue': return this.deleteQueue(input, call);
      case 'GetQueueAttributes': return this.getQueueAttributes(input, call);
      case 'SetQueueAttributes': return this.setQueueAttributes(input, call);
      case 'SendMessage': return this.sendMessage(input, call);
      case 'SendMessageBatch': return this.sendMessageBatch(input, call);
      case 'ReceiveMessage': return this.receiveMessage(input, call);
      case 'DeleteMessage': return this.deleteMessage(input, call);
      case 'DeleteMessageBatch': return this.deleteMessageBatch(input, call);
      case 'ChangeMessageVisibility': return this.changeVisibility(input, call);
      case 'ChangeMessageVisibilityBatch': return this.changeVisibilityBatch(input, call);
      case 'PurgeQueue': return this.purgeQueue(input, call);
      default: return undefined;
    }
  }

  // validateAttributes checks queue attributes and returns them as the strings SQS stores.
  validateAttributes(attrs, account, region) {
    const out = {};
    for (const name of Object.keys(attrs || {})) {
      const raw = attrs[name];
      if (name === 'FifoQueue' || name === 'ContentBasedDeduplication' || name === 'DeduplicationScope' || name === 'FifoThroughputLimit') {
        if (String(raw) === 'false') continue;
        throw sqsError('InvalidAttributeValue', 'InvalidAttributeValue', 'aws-sim simulates standard queues only; FIFO attribute ' + name + ' is not supported.');
      }
      const rule = ATTRIBUTE_RULES[name];
      if (rule) {
        const s = String(raw);
        const n = Number(s);
        if (!/^\d+$/.test(s) || n < rule.min || n > rule.max) {
          throw sqsError('InvalidAttributeValue', 'InvalidAttributeValue', 'Invalid value for the parameter ' + name + '.');
        }
        out[name] = String(n);
      } else if (name === 'RedrivePolicy') {
        out[name] = this.validateRedrive(raw, account, region);
      } else if (FREE_ATTRIBUTES.indexOf(name) >= 0) {
        out[name] = String(raw);
      } else {
        throw sqsError('InvalidAttributeName', 'InvalidAttributeName', 'Unknown Attribute ' + name + '.');
      }
    }
    return out;
  }

  validateRedrive(raw, account, region) {
    const bad = (reason) => sqsError('InvalidAttributeValue', 'InvalidAttributeValue', 'Value ' + raw + ' for parameter RedrivePolicy is invalid. Reason: ' + reason);
    if (raw === '') return '';
    let p;
    try {
      p = typeof raw === 'string' ? JSON.parse(raw) : raw;
    } catch (e) {
      throw sqsError('InvalidAttributeValue', 'InvalidAttributeValue', 'Invalid value for the parameter RedrivePolicy. Reason: Redrive policy is not a valid JSON map.');
    }
    if (!p || typeof p !== 'object' || Array.isArray(p)) throw bad('Redrive policy is not a valid JSON map.');
    if (p.maxReceiveCount === undefined) throw bad('Redrive policy does not contain mandatory attribute: maxReceiveCount.');
    if (p.deadLetterTargetArn === undefined) throw bad('Redrive policy does not contain mandatory attribute: deadLetterTargetArn.');
    const n = Number(p.maxReceiveCount);
    if (!Number.isInteger(n) || n < 1 || n > 1000) {
      throw bad('Invalid value for maxReceiveCount: ' + p.maxReceiveCount + ', valid values are from 1 to 1000 both inclusive.');
    }
    const a = parseArn(p.deadLetterTargetArn);
    if (!a || a.service !== 'sqs' || a.account !== account || a.region !== region) {
      throw bad('Dead-letter target must be a queue of the same account and region.');
    }
    if (!this.queues.has(SqsService.key(a.account, a.region, a.resource))) throw bad('Dead-letter target does not exist.');
    return JSON.stringify({ deadLetterTargetArn: p.deadLetterTargetArn, maxReceiveCount: n });
  }

  createQueue(input, call) {
    const name = input.QueueName;
    if (name === undefined || name === null || name === '') throw invalidParameter('Value for parameter QueueName is invalid. Reason: Must specify a queue name.');
    if (/\.fifo$/.test(name)) throw invalidParameter('aws-sim simulates standard queues only; FIFO queue ' + name + ' is not supported.');
    if (!/^[A-Za-z0-9_-]{1,80}$/.test(name)) {
      throw invalidParameter('Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length');
    }
    const attrs = this.validateAttributes(input.Attributes, call.account, call.region);
    const key = SqsService.key(call.account, call.region, name);
    const existing = this.queues.get(key);
    if (existing) {
      for (const k of Object.keys(attrs)) {
        const current = existing.attributes[k] !== undefined ? existing.attributes[k] : (ATTRIBUTE_RULES[k] ? ATTRIBUTE_RULES[k].def : '');
        if (current !== attrs[k]) {
          throw sqsError('QueueNameExists', 'QueueAlreadyExists', 'A queue already exists with the same name and a different value for attribute ' + k);
        }
      }
      return { QueueUrl: existing.url };
    }
    const nowS = String(Math.floor(Date.now() / 1000));
    const q = {
      key,
      account: call.account,
      region: call.region,
      name,
      arn: 'arn:aws:sqs:' + call.region + ':' + call.account + ':' + name,
      url: this.queueUrl(call.account, name),
      attributes: attrs,
      tags: Object.assign({}, input.tags || input.Tags || {}),
      created: nowS,
      modified: nowS,
      // Message id -> message: a Map finds and deletes in O(1), where an array's splice copies the
      // queue behind the message on every delete.
      messages: new Map(),
      // Their ids in the order sent, from order[head]. Receiving walks this, not the Map: a Map's
      // iterator steps over every entry deleted since its last rehash, so a queue worked from the
      // front (receive, delete, receive) made each receive walk past all it had deleted before.
      // Ids of deleted messages are skipped, and dropped once they reach the front.
      order: [],
      head: 0,
      waiters: new Set(),
      lastPurge: 0,
      seq: 0,
    };
    this.queues.set(key, q);
    return { QueueUrl: q.url };
  }

  getQueueUrl(input, call) {
    if (!input.QueueName) throw invalidParameter('Value for parameter QueueName is invalid. Reason: Must specify a queue name.');
    const owner = input.QueueOwnerAWSAccountId || call.account;
    if (owner !== call.account) {
      throw new AwsError('AccessDenied', 'Access to the resource ' + this.queueUrl(owner, input.QueueName) + ' is denied.', {
        status: 403, type: 'com.amazon.coral.service#AccessDeniedException', queryCode: 'AccessDenied',
      });
    }
    const q = this.queues.get(SqsService.key(owner, call.region, input.QueueName));
    if (!q) throw noQueue();
    return { QueueUrl: q.url };
  }

  listQueues(input, call) {
    const prefix = input.QueueNamePrefix || '';
    const urls = [];
    for (const q of this.queues.values()) {
      if (q.account === call.account && q.region === call.region && q.name.startsWith(prefix)) urls.push(q.url);
    }
    urls.sort();
    return urls.length ? { QueueUrls: urls.slice(0, input.MaxResults || 1000) } : {};
  }

  deleteQueue(input, call) {
    const q = this.resolveQueue(input.QueueUrl, call);
    this._wakeAll(q, true);
    this.queues.delete(q.key);
    return null;
  }

  attr(q, name) {
    if (q.attributes[name] !== undefined) return q.attributes[name];
    return ATTRIBUTE_RULES[name] ? ATTRIBUTE_RULES[name].def : undefined;
  }

  getQueueAttributes(input, call) {
    const q = this.resolveQueue(input.QueueUrl, call);
    const names = input.AttributeNames || [];
    const now = Date.now();
    let visible = 0;
    let inflight = 0;
    let delayed = 0;
    for (const m of q.messages.values()) {
      if (m.visibleAt <= now) visible++;
      else if (m.receiveCount > 0) inflight++;
      else delayed++;
    }
    const all = {
      ApproximateNumberOfMessages: String(visible),
      ApproximateNumberOfMessagesNotVisible: String(inflight),
      ApproximateNumberOfMessagesDelayed: String(delayed),
      CreatedTimestamp: q.created,
      LastModifiedTimestamp: q.modified,
      QueueArn: q.arn,
      SqsManagedSseEnabled: 'false',
    };
    for (const k of Object.keys(ATTRIBUTE_RULES)) all[k] = this.attr(q, k);
    for (const k of FREE_ATTRIBUTES) if (q.attributes[k] !== undefined && q.attributes[k] !== '') all[k] = q.attributes[k];
    const out = {};
    const wantAll = names.indexOf('All') >= 0;
    for (const n of names) {
      if (n === 'All') continue;
      if (!(n in all) && FREE_ATTRIBUTES.indexOf(n) < 0 && !['FifoQueue', 'ContentBasedDeduplication'].includes(n)) {
        throw sqsError('InvalidAttributeName', 'InvalidAttributeName', 'Unknown Attribute ' + n + '.');
      }
    }
    for (const k of Object.keys(all)) if (wantAll || names.indexOf(k) >= 0) out[k] = all[k];
    return Object.keys(out).length ? { Attributes: out } : {};
  }

  setQueueAttributes(input, call) {
    const q = this.resolveQueue(input.QueueUrl, call);
    const attrs = this.validateAttributes(input.Attributes || {}, q.account, q.region);
    Object.assign(q.attributes, attrs);
    q.modified = String(Math.floor(Date.now() / 1000));
    return null;
  }

  // checkMessage validates one message (body, attributes, size) and returns its stored form.
  checkMessage(q, entry, call) {
    const body = entry.MessageBody;
    if (body === undefined || body === null || body === '') throw missingParameter('MessageBody');
    if (typeof body !== 'string') throw invalidParameter('Value for parameter MessageBody is invalid.');
    const bad = invalidBodyChar(body);
    if (bad >= 0) {
      throw sqsError('InvalidMessageContents', 'InvalidMessageContents', "Invalid binary character '#x" + bad.toString(16).toUpperCase() +
        "' was found in the message body, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF");
    }
    const attrs = entry.MessageAttributes || {};
    const names = Object.keys(attrs);
    if (names.length > 10) throw invalidParameter('Number of message attributes [' + names.length + '] exceeds the allowed maximum [10].');
    for (const n of names) {
      const a = attrs[n] || {};
      if (!/^(String|Number|Binary)(\..+)?$/.test(a.DataType || '')) {
        throw invalidParameter('The type of message (user) attribute \'' + n + '\' is invalid. You must use only the following supported type prefixes: Binary, Number, String.');
      }
      if (a.StringValue === undefined && a.BinaryValue === undefined) {
        throw invalidParameter('The message attribute \'' + n + '\' must contain non-empty message attribute value for message attribute type \'' + a.DataType.split('.')[0] + '\'.');
      }
    }
    const max = Number(this.attr(q, 'MaximumMessageSize'));
    const size = Buffer.byteLength(body) + attributesSize(attrs);
    if (size > max) {
      throw invalidParameter('One or more parameters are invalid. Reason: Message must be shorter than ' + max + ' bytes.');
    }
    const delay = intParam(entry.DelaySeconds, 'DelaySeconds', 0, 900, 'DelaySeconds must be >= 0 and <= 900.');
    const sys = {};
    const msa = entry.MessageSystemAttributes || {};
    if (msa.AWSTraceHeader) sys.AWSTraceHeader = msa.AWSTraceHeader.StringValue;
    return {
      body,
      attrs: names.length ? attrs : null,
      md5Attrs: md5OfAttributes(attrs),
      md5Sys: md5OfAttributes(msa),
      delay: delay === undefined ? Number(this.attr(q, 'DelaySeconds')) : delay,
      sys,
      senderId: call.senderId,
      size,
    };
  }

  // enqueue stores a checked message and wakes long polls. It returns the stored message.
  enqueue(q, m, extra) {
    const now = Date.now();
    const msg = {
      id: (extra && extra.id) || uuid(),
      body: m.body,
      md5: md5Hex(Buffer.from(m.body, 'utf8')),
      attrs: m.attrs,
      md5Attrs: m.md5Attrs,
      sys: Object.assign({}, m.sys, extra && extra.sys),
      senderId: m.senderId,
      sentMs: (extra && extra.sentMs) || now,
      visibleAt: now + m.delay * 1000,
      receiveCount: (extra && extra.receiveCount) || 0,
      firstReceiveMs: (extra && extra.firstReceiveMs) || null,
      seq: 0,
    };
    if (!q.messages.has(msg.id)) q.order.push(msg.id);
    q.messages.set(msg.id, msg);
    this._wakeAll(q, false);
    return msg;
  }

  // enqueueInternal delivers a message from another service (EventBridge, SNS); no caller checks apply.
  enqueueInternal(queueArn, body, senderId) {
    const q = this.findByArn(queueArn);
    if (!q) return { ok: false, error: 'queue ' + queueArn + ' does not exist' };
    const max = Number(this.attr(q, 'MaximumMessageSize'));
    if (Buffer.byteLength(body) > max) return { ok: false, error: 'message larger than MaximumMessageSize' };
    const msg = this.enqueue(q, { body, attrs: null, md5Attrs: null, sys: {}, senderId, delay: Number(this.attr(q, 'DelaySeconds')) });
    return { ok: true, message_id: msg.id };
  }

  sendMessage(input, call) {
    const q = this.resolveQueue(input.QueueUrl, call);
    const m = this.checkMessage(q, input, call);
    const msg = this.enqueue(q, m);
    const out = { MD5OfMessageBody: msg.md5, MessageId: msg.id };
    if (m.md5Attrs) out.MD5OfMessageAttributes = m.md5Attrs;
    if (m.md5Sys) out.MD5OfMessageSystemAttributes = m.md5Sys;
    return out;
  }

  // checkBatch applies the batch rules shared by the three batch operations.
  checkBatch(entries, entryName) {
    if (!Array.isArray(entries) || entries.length === 0) {
      throw sqsError('EmptyBatchRequest', 'AWS.SimpleQueueService.EmptyBatchRequest', 'There should be at least one ' + entryName + ' in the request.');
    }
    if (entries.length > 10) {
      throw sqsError('TooManyEntriesInBatchRequest', 'AWS.SimpleQueueService.TooManyEntriesInBatchRequest',
        'Maximum number of entries per request are 10. You have sent ' + entries.length + '.');
    }
    const seen = new Set();
    for (const e of entries) {
      if (!e || typeof e.Id !== 'string' || !/^[A-Za-z0-9_-]{1,80}$/.test(e.Id)) {
        throw sqsError('InvalidBatchEntryId', 'AWS.SimpleQueueService.InvalidBatchEntryId',
          'A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.');
      }
      if (seen.has(e.Id)) {
        throw sqsError('BatchEntryIdsNotDistinct', 'AWS.SimpleQueueService.BatchEntryIdsNotDistinct', 'Id ' + e.Id + ' repeated.');
      }
      seen.add(e.Id);
    }
  }

  sendMessageBatch(input, call) {
    const q = this.resolveQueue(input.QueueUrl, call);
    this.checkBatch(input.Entries, 'SendMessageBatchRequestEntry');
    const checked = [];
    let total = 0;
    const failed = [];
    for (const e of input.Entries) {
      try {
        const m = this.checkMessage(q, e, call);
        total += m.size;
        checked.push([e, m]);
      } catch (err) {
        if (!(err instanceof AwsError)) throw err;
        failed.push({ Id: e.Id, SenderFault: true, Code: err.queryCode || err.code, Message: err.message });
      }
    }
    if (total > BATCH_MAX_BYTES) {
      throw sqsError('BatchRequestTooLong', 'AWS.SimpleQueueService.BatchRequestTooLong',
        'Batch requests cannot be longer than ' + BATCH_MAX_BYTES + ' bytes. You have sent ' + total + ' bytes.');
    }
    const ok = [];
    for (const [e, m] of checked) {
      const msg = this.enqueue(q, m);
      const r = { Id: e.Id, MessageId: msg.id, MD5OfMessageBody: msg.md5 };
      if (m.md5Attrs) r.MD5OfMessageAttributes = m.md5Attrs;
      if (m.md5Sys) r.MD5OfMessageSystemAttributes = m.md5Sys;
      ok.push(r);
    }
    return { Successful: ok, Failed: failed };
  }

  // _expire drops messages past the queue's retention period.
  _expire(q) {
    const limit = Date.now() - Number(this.attr(q, 'MessageRetentionPeriod')) * 1000;
    const first = this._front(q);
    if (!first || first.sentMs >= limit) return;
    for (const m of q.messages.values()) if (m.sentMs < limit) q.messages.delete(m.id);
  }

  // _front returns the queue's oldest message (undefined when empty), dropping the ids of deleted
  // messages from the front of its order.
  _front(q) {
    for (; q.head < q.order.length; q.head++) {
      const m = q.messages.get(q.order[q.head]);
      if (m) break;
    }
    if (q.head > 1024 && q.head * 2 > q.order.length) {
      q.order = q.order.slice(q.head);
      q.head = 0;
    }
    return q.head < q.order.length ? q.messages.get(q.order[q.head]) : undefined;
  }

  _handle(q, msg) {
    return HANDLE_PREFIX + Buffer.from(JSON.stringify([q.key, msg.id, msg.seq, uuid()])).toString('base64');
  }

  // _parseHandle decodes a receipt handle of this queue, or returns null when it is not one.
  _parseHandle(q, handle) {
    if (typeof handle !== 'string' || !handle.startsWith(HANDLE_PREFIX)) return null;
    try {
      const v = JSON.parse(Buffer.from(handle.slice(HANDLE_PREFIX.length), 'base64').toString('utf8'));
      if (!Array.isArray(v) || v[0] !== q.key) return null;
      return { id: v[1], seq: v[2] };
    } catch (e) {
      return null;
    }
  }

  // _take receives up to max visible messages, moving over-received ones to the dead-letter queue.
  _take(q, max, vtS) {
    this._expire(q);
    const now = Date.now();
    let redrive = null;
    if (q.attributes.RedrivePolicy) redrive = JSON.parse(q.attributes.RedrivePolicy);
    const out = [];
    const moved = [];
    this._front(q);
    for (let i = q.head; i < q.order.length && out.length < max; i++) {
      const m = q.messages.get(q.order[i]);
      // Deleted, or an id sent again after its message left (a redrive back): seen once.
      if (!m || out.indexOf(m) >= 0 || moved.some((e) => e[0] === m)) continue;
      if (m.visibleAt > now) continue;
      if (redrive && m.receiveCount >= redrive.maxReceiveCount) {
        const dlq = this.findByArn(redrive.deadLetterTargetArn);
        if (dlq) {
          moved.push([m, dlq]);
          continue;
        }
      }
      m.receiveCount++;
      if (!m.firstReceiveMs) m.firstReceiveMs = now;
      m.seq++;
      m.visibleAt = now + vtS * 1000;
      out.push(m);
    }
    for (const [m, dlq] of moved) {
      q.messages.delete(m.id);
      // The message keeps its id, body, sent time and receive count, and gains DeadLetterQueueSourceArn.
      this.enqueue(dlq, { body: m.body, attrs: m.attrs, md5Attrs: m.md5Attrs, sys: m.sys, senderId: m.senderId, delay: 0 },
        { id: m.id, sentMs: m.sentMs, receiveCount: m.receiveCount, firstReceiveMs: m.firstReceiveMs, sys: { DeadLetterQueueSourceArn: q.arn } });
    }
    return out;
  }

  _format(q, msgs, input) {
    const sysNames = [].concat(input.AttributeNames || [], input.MessageSystemAttributeNames || []);
    const allSys = sysNames.indexOf('All') >= 0;
    const attrNames = input.MessageAttributeNames || [];
    const out = msgs.map((m) => {
      const r = { MessageId: m.id, ReceiptHandle: this._handle(q, m), MD5OfBody: m.md5, Body: m.body };
      const sys = {
        ApproximateReceiveCount: String(m.receiveCount),
        ApproximateFirstReceiveTimestamp: String(m.firstReceiveMs),
        SentTimestamp: String(m.sentMs),
        SenderId: m.senderId,
      };
      if (m.sys.AWSTraceHeader) sys.AWSTraceHeader = m.sys.AWSTraceHeader;
      if (m.sys.DeadLetterQueueSourceArn) sys.DeadLetterQueueSourceArn = m.sys.DeadLetterQueueSourceArn;
      const a = {};
      for (const k of Object.keys(sys)) if (allSys || sysNames.indexOf(k) >= 0) a[k] = sys[k];
      if (Object.keys(a).length) r.Attributes = a;
      if (m.attrs && attrNames.length) {
        const sel = {};
        for (const k of Object.keys(m.attrs)) {
          const want = attrNames.some((n) => n === 'All' || n === '.*' || n === k || (n.endsWith('.*') && k.startsWith(n.slice(0, -1))));
          if (want) sel[k] = m.attrs[k];
        }
        if (Object.keys(sel).length) {
          r.MD5OfMessageAttributes = md5OfAttributes(sel);
          r.MessageAttributes = sel;
        }
      }
      return r;
    });
    return out.length ? { Messages: out } : {};
  }

  receiveMessage(input, call) {
    const q = this.resolveQueue(input.QueueUrl, call);
    const max = intParam(input.MaxNumberOfMessages, 'MaxNumberOfMessages', 1, 10, 'Must be between 1 and 10, if provided.') || 1;
    let wait = intParam(input.WaitTimeSeconds, 'WaitTimeSeconds', 0, 20, 'Must be >= 0 and <= 20, if provided.');
    if (wait === undefined) wait = Number(this.attr(q, 'ReceiveMessageWaitTimeSeconds'));
    let vt = intParam(input.VisibilityTimeout, 'VisibilityTimeout', 0, 43200, 'Must be between 0 and 43200, if provided.');
    if (vt === undefined) vt = Number(this.attr(q, 'VisibilityTimeout'));
    for (const n of [].concat(input.AttributeNames || [], input.MessageSystemAttributeNames || [])) {
      if (n !== 'All' && SYSTEM_ATTRIBUTES.indexOf(n) < 0) {
        throw sqsError('InvalidAttributeName', 'InvalidAttributeName', 'Unknown Attribute ' + n + '.');
      }
    }
    const first = this._take(q, max, vt);
    if (first.length || wait === 0) return this._format(q, first, input);

    // Long poll: wait for a message to become visible (a send, a visibility change or a timeout
    // running out), answer as soon as one does, and take nothing for a client that has gone.
    return new Promise((resolve) => {
      const deadline = Date.now() + wait * 1000;
      let timer = null;
      let done = false;
      const waiter = {};
      const finish = (msgs) => {
        if (done) return;
        done = true;
        if (timer) clearTimeout(timer);
        q.waiters.delete(waiter);
        resolve(msgs === null ? null : this._format(q, msgs, input));
      };
      const arm = () => {
        if (timer) clearTimeout(timer);
        let next = deadline;
        const now = Date.now();
        for (const m of q.messages.values()) if (m.visibleAt > now && m.visibleAt < next) next = m.visibleAt;
        timer = setTimeout(attempt, Math.max(1, next - now));
      };
      const attempt = (giveUp) => {
        if (done) return;
        if (call.closed) return finish(null);
        if (giveUp === true || !this.queues.has(q.key)) return finish([]);
        const got = this._take(q, max, vt);
        if (got.length || Date.now() >= deadline) return finish(got);
        arm();
      };
      waiter.wake = attempt;
      q.waiters.add(waiter);
      call.onClose(() => finish(null));
      arm();
    });
  }

  _wakeAll(q, giveUp) {
    for (const w of Array.from(q.waiters)) setImmediate(() => w.wake(giveUp));
  }

  deleteMessage(input, call) {
    const q = this.resolveQueue(input.QueueUrl, call);
    if (input.ReceiptHandle === undefined || input.ReceiptHandle === '') throw missingParameter('ReceiptHandle');
    this._delete(q, input.ReceiptHandle);
    return null;
  }

  // _delete removes the message a receipt handle names. A handle of a message already deleted is
  // accepted, as SQS does; a handle older than the message's latest receive is accepted but deletes
  // nothing, which is the documented worst case ("the request succeeds, but the message might not
  // be deleted").
  _delete(q, handle) {
    const h = this._parseHandle(q, handle);
    if (!h) throw sqsError('ReceiptHandleIsInvalid', 'ReceiptHandleIsInvalid', 'The input receipt handle "' + handle + '" is not a valid receipt handle.');
    const m = q.messages.get(h.id);
    if (m && m.seq === h.seq) q.messages.delete(h.id);
  }

  deleteMessageBatch(input, call) {
    const q = this.resolveQueue(input.QueueUrl, call);
    this.checkBatch(input.Entries, 'DeleteMessageBatchRequestEntry');
    const ok = [];
    const failed = [];
    for (const e of input.Entries) {
      if (typeof e.ReceiptHandle !== 'string' || !e.ReceiptHandle.trim()) {
        failed.push({ Id: e.Id, SenderFault: true, Code: 'MissingParameter', Message: 'The request must contain the parameter ReceiptHandle.' });
        continue;
      }
      try {
        this._delete(q, e.ReceiptHandle);
        ok.push({ Id: e.Id });
      } catch (err) {
        if (!(err instanceof AwsError)) throw err;
        failed.push({ Id: e.Id, SenderFault: true, Code: err.queryCode, Message: err.message });
      }
    }
    return { Successful: ok, Failed: failed };
  }

  _changeVisibility(q, handle, vtRaw) {
    const vt = intParam(vtRaw, 'VisibilityTimeout', 0, 43200, 'VisibilityTimeout must be an integer between 0 and 43200.');
    if (vt === undefined) throw missingParameter('VisibilityTimeout');
    const h = this._parseHandle(q, handle);
    if (!h) throw sqsError('ReceiptHandleIsInvalid', 'ReceiptHandleIsInvalid', 'The input receipt handle "' + handle + '" is not a valid receipt handle.');
    const m = q.messages.get(h.id);
    if (!m || m.seq !== h.seq || m.visibleAt <= Date.now()) {
      throw invalidParameter('Value ' + handle + ' for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.');
    }
    m.visibleAt = Date.now() + vt * 1000;
    this._wakeAll(q, false);
  }

  changeVisibility(input, call) {
    const q = this.resolveQueue(input.QueueUrl, call);
    if (input.ReceiptHandle === undefined || input.ReceiptHandle === '') throw missingParameter('ReceiptHandle');
    this._changeVisibility(q, input.ReceiptHandle, input.VisibilityTimeout);
    return null;
  }

  changeVisibilityBatch(input, call) {
    const q = this.resolveQueue(input.QueueUrl, call);
    this.checkBatch(input.Entries, 'ChangeMessageVisibilityBatchRequestEntry');
    const ok = [];
    const failed = [];
    for (const e of input.Entries) {
      try {
        if (typeof e.ReceiptHandle !== 'string' || !e.ReceiptHandle.trim()) throw missingParameter('ReceiptHandle');
        this._changeVisibility(q, e.ReceiptHandle, e.VisibilityTimeout);
        ok.push({ Id: e.Id });
      } catch (err) {
        if (!(err instanceof AwsError)) throw err;
        failed.push({ Id: e.Id, SenderFault: true, Code: err.queryCode, Message: err.message });
      }
    }
    return { Successful: ok, Failed: failed };
  }

  purgeQueue(input, call) {
    const q = this.resolveQueue(input.QueueUrl, call);
    const now = Date.now();
    if (now - q.lastPurge < 60000) {
      throw sqsError('PurgeQueueInProgress', 'AWS.SimpleQueueService.PurgeQueueInProgress',
        'Only one PurgeQueue operation on ' + q.name + ' is allowed every 60 seconds.', 403);
    }
    q.lastPurge = now;
    q.messages.clear();
    q.order = [];
    q.head = 0;
    return null;
  }

  // Admin views: queue counts, the queue list, and one queue's messages without receiving them.
  adminCounts(q) {
    this._expire(q);
    const now = Date.now();
    const c = { visible: 0, in_flight: 0, delayed: 0 };
    for (const m of q.messages.values()) {
      if (m.visibleAt <= now) c.visible++;
      else if (m.receiveCount > 0) c.in_flight++;
      else c.delayed++;
    }
    return c;
  }

  adminList() {
    return Array.from(this.queues.values()).map((q) => ({
      url: q.url, arn: q.arn, account: q.account, region: q.region, name: q.name,
      attributes: Object.assign({}, q.attributes), counts: this.adminCounts(q), long_polls: q.waiters.size,
    }));
  }

  adminMessages(ref) {
    let q = null;
    for (const x of this.queues.values()) if (x.url === ref || x.arn === ref || x.name === ref) q = x;
    if (!q) return null;
    this._expire(q);
    const now = Date.now();
    return Array.from(q.messages.values(), (m) => ({
      message_id: m.id,
      body: m.body,
      message_attributes: m.attrs,
      sent_timestamp: m.sentMs,
      receive_count: m.receiveCount,
      visible: m.visibleAt <= now,
      dead_letter_source_arn: m.sys.DeadLetterQueueSourceArn || null,
    }));
  }
}

// Service description used by the router.
SqsService.meta = {
  name: 'sqs',
  signingName: 'sqs',
  protocol: 'json',
  targetPrefix: 'AmazonSQS',
  contentType: 'application/x-amz-json-1.0',
  errorFamily: 'sqs-json',
  // Used only to refuse a query-protocol SQS request in the XML that protocol expects.
  xmlns: 'http://queue.amazonaws.com/doc/2012-11-05/',
  operations: ['CreateQueue', 'GetQueueUrl', 'ListQueues', 'DeleteQueue', 'GetQueueAttributes', 'SetQueueAttributes',
    'SendMessage', 'SendMessageBatch', 'ReceiveMessage', 'DeleteMessage', 'DeleteMessageBatch', 'ChangeMessageVisibility',
    'ChangeMessageVisibilityBatch', 'PurgeQueue'],
};

module.exports = { SqsService, md5OfAttributes };
