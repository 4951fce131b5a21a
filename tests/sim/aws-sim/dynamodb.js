'use strict';
// Amazon DynamoDB (DynamoDB_20120810.*, JSON 1.0). After the sim has verified the signature, calls
// are forwarded unchanged to an embedded dynalite, one per account and region (tables are
// per-account, per-region in AWS), bound to 127.0.0.1 on an ephemeral port. UpdateTimeToLive and
// DescribeTimeToLive, which dynalite lacks, are answered here with AWS's TTL semantics: expired
// items stay readable until something deletes them, and the sim deletes them only when asked to
// (POST /_sim/dynamodb/expire-ttl), much as AWS deletes them "typically within a few days".

const http = require('http');
const dynalite = require('dynalite');
const { AwsError } = require('./util');

// The headers dynalite needs to accept an internal call; it does not verify signatures.
const INTERNAL_AUTH = 'AWS4-HMAC-SHA256 Credential=AKIAQFSSIMINTERNAL01/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00';

function validation(message) {
  return new AwsError('ValidationException', message, { type: 'com.amazon.coral.validate#ValidationException' });
}

class DynamoDbService {
  constructor(sim) {
    this.sim = sim;
    this.instances = new Map();
    this.createTableMs = sim.options.dynamodbCreateTableMs === undefined ? 0 : Number(sim.options.dynamodbCreateTableMs);
  }

  // instance returns the dynalite for an account and region, starting it on first use.
  instance(account, region) {
    const key = account + '/' + region;
    let inst = this.instances.get(key);
    if (inst) return inst.ready;
    inst = { account, region, ttl: new Map(), server: null, port: 0 };
    inst.ready = new Promise((resolve, reject) => {
      // dynalite reads the account and region it puts in ARNs from the environment when a store
      // is created, synchronously inside dynalite(); set them for that call only.
      const saved = { a: process.env.AWS_ACCOUNT_ID, r: process.env.AWS_REGION };
      process.env.AWS_ACCOUNT_ID = account;
      process.env.AWS_REGION = region;
      try {
        inst.server = dynalite({ createTableMs: this.createTableMs, deleteTableMs: this.createTableMs, updateTableMs: this.createTableMs });
      } finally {
        if (saved.a === undefined) delete process.env.AWS_ACCOUNT_ID; else process.env.AWS_ACCOUNT_ID = saved.a;
        if (saved.r === undefined) delete process.env.AWS_REGION; else process.env.AWS_REGION = saved.r;
      }
      inst.server.on('error', reject);
      inst.server.listen(0, '127.0.0.1', () => {
        inst.port = inst.server.address().port;
        resolve(inst);
      });
    });
    this.instances.set(key, inst);
    return inst.ready;
  }

  // forward sends a request body to dynalite and returns {status, headers, body}.
  forward(inst, target, body, headers) {
    return new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1',
        port: inst.port,
        method: 'POST',
        path: '/',
        // A fresh connection per call, so that closing dynalite never waits on idle keep-alives.
        agent: false,
        headers: Object.assign({
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': 'DynamoDB_20120810.' + target,
          'content-length': Buffer.byteLength(body),
        }, headers),
      }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const out = {};
          for (const h of ['content-type', 'x-amz-crc32', 'x-amzn-requestid']) if (res.headers[h] !== undefined) out[h] = res.headers[h];
          resolve({ status: res.statusCode, headers: out, body: Buffer.concat(chunks) });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  async internal(inst, target, payload) {
    const r = await this.forward(inst, target, JSON.stringify(payload), { authorization: INTERNAL_AUTH, 'x-amz-date': '20260101T000000Z' });
    const json = r.body.length ? JSON.parse(r.body.toString('utf8')) : {};
    if (r.status >= 400) {
      const e = new AwsError(String(json.__type || '').split('#').pop(), json.message || json.Message || '', { status: r.status, type: json.__type });
      throw e;
    }
    return json;
  }

  // call answers TTL operations here and forwards everything else to dynalite untouched.
  async call(op, input, call) {
    const inst = await this.instance(call.account, call.region);
    if (op === 'UpdateTimeToLive') return this.updateTtl(inst, input);
    if (op === 'DescribeTimeToLive') return this.describeTtl(inst, input);
    const h = call.req.headers;
    const pass = {};
    for (const k of ['authorization', 'x-amz-date', 'date', 'x-amz-security-token', 'content-type']) if (h[k] !== undefined) pass[k] = h[k];
    const r = await this.forward(inst, op, call.rawBody, pass);
    if (op === 'DeleteTable' && r.status === 200 && input.TableName) inst.ttl.delete(input.TableName);
    return { raw: r };
  }

  async requireTable(inst, name) {
    if (name === undefined || name === null) {
      throw validation("1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null");
    }
    // DescribeTable answers ResourceNotFoundException for a missing table, as AWS does for TTL calls.
    return this.internal(inst, 'DescribeTable', { TableName: name });
  }

  async updateTtl(inst, input) {
    const spec = input.TimeToLiveSpecification;
    if (!spec) throw validation("1 validation error detected: Value null at 'timeToLiveSpecification' failed to satisfy constraint: Member must not be null");
    const errs = [];
    if (typeof spec.Enabled !== 'boolean') errs.push("Value null at 'timeToLiveSpecification.enabled' failed to satisfy constraint: Member must not be null");
    if (typeof spec.AttributeName !== 'string') errs.push("Value null at 'timeToLiveSpecification.attributeName' failed to satisfy constraint: Member must not be null");
    else if (spec.AttributeName.length < 1 || spec.AttributeName.length > 255) errs.push("Value '" + spec.AttributeName + "' at 'timeToLiveSpecification.attributeName' failed to satisfy constraint: Member must have length less than or equal to 255");
    if (errs.length) throw validation(errs.length + ' validation error' + (errs.length > 1 ? 's' : '') + ' detected: ' + errs.join('; '));
    await this.requireTable(inst, input.TableName);
    const cur = inst.ttl.get(input.TableName);
    if (spec.Enabled) {
      if (cur) throw validation('TimeToLive is already enabled');
      inst.ttl.set(input.TableName, { attribute: spec.AttributeName });
    } else {
      if (!cur) throw validation('TimeToLive is already disabled');
      if (cur.attribute !== spec.AttributeName) throw validation('TimeToLive is active on a different AttributeName: current AttributeName is ' + cur.attribute);
      inst.ttl.delete(input.TableName);
    }
    return { TimeToLiveSpecification: { Enabled: spec.Enabled, AttributeName: spec.AttributeName } };
  }

  async describeTtl(inst, input) {
    await this.requireTable(inst, input.TableName);
    const cur = inst.ttl.get(input.TableName);
    // AWS reports ENABLING for up to an hour after UpdateTimeToLive; the sim enables at once.
    return { TimeToLiveDescription: cur ? { TimeToLiveStatus: 'ENABLED', AttributeName: cur.attribute } : { TimeToLiveStatus: 'DISABLED' } };
  }

  // expireTtl deletes the items whose TTL attribute is a number of epoch seconds below now, in the
  // tables with TTL enabled (optionally one account/region/table). It returns how many it deleted.
  async expireTtl(filter) {
    const f = filter || {};
    const nowS = f.now === undefined ? Date.now() / 1000 : Number(f.now);
    const deleted = [];
    for (const inst of this.instances.values()) {
      if (f.account && inst.account !== String(f.account)) continue;
      if (f.region && inst.region !== f.region) continue;
      for (const [table, ttl] of inst.ttl.entries()) {
        if (f.table && table !== f.table) continue;
        const desc = await this.internal(inst, 'DescribeTable', { TableName: table });
        const keys = desc.Table.KeySchema.map((k) => k.AttributeName);
        let start;
        do {
          const page = await this.internal(inst, 'Scan', start ? { TableName: table, ExclusiveStartKey: start } : { TableName: table });
          for (const item of page.Items || []) {
            const v = item[ttl.attribute];
            if (!v || v.N === undefined || !(Number(v.N) < nowS)) continue;
            const key = {};
            for (const k of keys) key[k] = item[k];
            await this.internal(inst, 'DeleteItem', { TableName: table, Key: key });
            deleted.push({ account: inst.account, region: inst.region, table, key });
          }
          start = page.LastEvaluatedKey;
        } while (start);
      }
    }
    return { deleted: deleted.length, items: deleted };
  }

  async reset() {
    await this.close();
  }

  close() {
    const all = Array.from(this.instances.values());
    this.instances.clear();
    return Promise.all(all.map((inst) => inst.ready.then((i) => new Promise((resolve) => {
      i.server.close(() => resolve());
      if (i.server.closeAllConnections) i.server.closeAllConnections();
    }), () => undefined)));
  }
}

DynamoDbService.meta = {
  name: 'dynamodb',
  signingName: 'dynamodb',
  protocol: 'json',
  targetPrefix: 'DynamoDB_20120810',
  contentType: 'application/x-amz-json-1.0',
  errorFamily: 'coral-json',
  errorPrefix: 'com.amazonaws.dynamodb.v20120810#',
  // Every DynamoDB operation is accepted and passed to dynalite, which answers unknown ones itself.
  operations: null,
};

module.exports = { DynamoDbService };
