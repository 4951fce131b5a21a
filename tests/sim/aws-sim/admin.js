'use strict';
// The admin API under /_sim/: seeding, fault injection, the call log, inspection of what the
// services hold (SNS messages, SQS queues, EventBridge deliveries), credentials, and reset.
// Requests and responses are JSON; admin calls are not signed.

const { AwsError } = require('./util');
const { canonicalService } = require('./faults');

function send(res, status, body) {
  const text = JSON.stringify(body, null, 1);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

// asList accepts one item, an array, or an object holding an array under `key`.
function asList(body, key) {
  if (Array.isArray(body)) return body;
  if (body && Array.isArray(body[key])) return body[key];
  return [body];
}

class Admin {
  constructor(sim) {
    this.sim = sim;
    this.routes = [
      ['GET', '/_sim/health', () => ({ ok: true, service: 'aws-sim', url: this.sim.url, hub_account: this.sim.hubAccount, region: this.sim.region })],
      ['POST', '/_sim/reset', () => this.sim.reset().then(() => ({ ok: true }))],
      ['GET', '/_sim/faults', () => ({ faults: this.sim.faults.list() })],
      ['POST', '/_sim/faults', (b) => ({ faults: asList(b, 'faults').map((f) => this.sim.faults.add(f)) })],
      ['DELETE', '/_sim/faults', () => {
        this.sim.faults.reset();
        return { ok: true };
      }],
      ['DELETE', /^\/_sim\/faults\/([^/]+)$/, (b, q, m) => ({ removed: this.sim.faults.remove(m[1]) })],
      ['GET', '/_sim/calls', (b, q) => {
        const f = Object.fromEntries(q);
        if (f.service) f.service = canonicalService(f.service) || f.service;
        return this.sim.calls.query(f);
      }],
      ['DELETE', '/_sim/calls', () => {
        this.sim.calls.reset();
        return { ok: true };
      }],
      ['GET', '/_sim/sns/messages', (b, q) => this.sim.services.sns.adminMessages(q.get('topic'))],
      ['DELETE', '/_sim/sns/messages', (b, q) => ({ removed: this.sim.services.sns.adminClear(q.get('topic')) })],
      ['GET', '/_sim/sqs/queues', () => ({ queues: this.sim.services.sqs.adminList() })],
      ['GET', '/_sim/sqs/messages', (b, q) => {
        const msgs = this.sim.services.sqs.adminMessages(q.get('queue'));
        if (!msgs) throw new AwsError('NotFound', 'no queue with that url, arn or name', { status: 404 });
        return { messages: msgs };
      }],
      ['GET', '/_sim/ecs/task-definitions', () => ({ taskDefinitions: this.sim.services.ecs.list() })],
      ['POST', '/_sim/ecs/task-definitions', (b) => ({
        taskDefinitions: asList(b, 'taskDefinitions').map((td) => this.sim.services.ecs.addTaskDefinition(td, this.defaults())),
      })],
      ['GET', '/_sim/ecr/images', () => ({ images: this.sim.services.ecr.list() })],
      ['POST', '/_sim/ecr/images', (b) => ({
        images: asList(b, 'images').map((i) => {
          const img = this.sim.services.ecr.addImage(i, this.defaults());
          return { account: img.account, region: img.region, repository: img.repository, digest: img.digest, tags: img.tags };
        }),
      })],
      ['GET', '/_sim/sts/roles', () => ({ roles: this.sim.services.sts.listRoles() })],
      ['POST', '/_sim/sts/roles', (b) => ({ roles: asList(b, 'roles').map((r) => this.sim.services.sts.addRole(r)).map((r) => r.arn) })],
      ['GET', '/_sim/secrets', () => ({ secrets: this.sim.services.secretsmanager.list() })],
      ['POST', '/_sim/secrets', (b) => ({ secrets: asList(b, 'secrets').map((s) => this.sim.seedSecret(s)) })],
      ['GET', '/_sim/credentials', () => ({ credentials: this.sim.identity.list() })],
      ['POST', '/_sim/credentials', (b) => ({
        credentials: asList(b, 'credentials').map((c) => {
          const cred = this.sim.identity.addUser(c);
          return { access_key_id: cred.accessKeyId, account: cred.account, arn: cred.arn };
        }),
      })],
      ['POST', '/_sim/credentials/expire', (b) => {
        if (!this.sim.identity.expire(b.access_key_id)) throw new AwsError('NotFound', 'no temporary credentials with that access_key_id', { status: 404 });
        return { ok: true };
      }],
      ['GET', '/_sim/container-credentials', () => this.sim.identity.containerState()],
      ['POST', '/_sim/container-credentials', (b) => this.sim.identity.configureContainer(b)],
      ['POST', '/_sim/events/deliver', (b) => this.sim.services.events.adminDeliver(b)],
      ['GET', '/_sim/events/log', () => ({ deliveries: this.sim.services.events.log })],
      ['GET', '/_sim/events/rules', () => ({ rules: this.sim.services.events.adminRules() })],
      ['POST', '/_sim/dynamodb/expire-ttl', (b) => this.sim.services.dynamodb.expireTtl(b)],
    ];
  }

  defaults() {
    return { account: this.sim.hubAccount, region: this.sim.region };
  }

  async handle(req, res, url, rawBody) {
    let body = {};
    if (rawBody.length) {
      try {
        body = JSON.parse(rawBody.toString('utf8'));
      } catch (e) {
        return send(res, 400, { error: 'the body must be JSON' });
      }
    }
    for (const [method, path, fn] of this.routes) {
      if (method !== req.method) continue;
      const m = typeof path === 'string' ? (url.pathname === path ? [] : null) : path.exec(url.pathname);
      if (!m) continue;
      try {
        const out = await fn(body || {}, url.searchParams, m);
        return send(res, 200, out);
      } catch (e) {
        if (!(e instanceof AwsError)) throw e;
        return send(res, e.status || 400, { error: e.message, code: e.code });
      }
    }
    return send(res, 404, { error: 'no admin route ' + req.method + ' ' + url.pathname });
  }
}

module.exports = { Admin };
