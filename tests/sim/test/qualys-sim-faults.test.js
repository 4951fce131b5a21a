'use strict';
// Contract tests of qualys-sim rate limiting (reference §4, §6.12), fault injection (§6.14) and the
// admin call log and state.

const { describe, it, before, after, beforeEach } = require('node:test');
const assert = require('node:assert');
const { startSim, createRegistry, registryBody, request, waitFor } = require('../qualys-sim/testkit');

function assertRateHeaders(r) {
  for (const h of ['x-ratelimit-limit', 'x-ratelimit-window-sec', 'x-ratelimit-remaining']) {
    assert.match(String(r.headers[h]), /^\d+$/, `${h} on ${r.status}`);
  }
}

describe('qualys-sim rate limits and faults', () => {
  let env;
  before(async () => { env = await startSim(); });
  after(async () => { await env.handle.close(); });
  beforeEach(async () => {
    await env.client.admin('POST', 'reset');
    await env.client.login();
  });

  it('every /csapi response carries the three X-RateLimit headers for its path pattern', async () => {
    const a = await env.client.get('/images');
    const b = await env.client.get('/images/ffffffffffff');
    assertRateHeaders(a);
    assertRateHeaders(b);
    assert.strictEqual(a.headers['x-ratelimit-limit'], '5000');
    assert.strictEqual(a.headers['x-ratelimit-window-sec'], '60');
    assert.strictEqual(Number(b.headers['x-ratelimit-remaining']), Number(a.headers['x-ratelimit-remaining']) - 1);
    const reg = await env.client.get('/registry/aws-base');
    assertRateHeaders(reg);
    assert.strictEqual(reg.headers['x-ratelimit-limit'], '1000');
    assert.strictEqual(reg.headers['x-ratelimit-remaining'], '999', 'registry and images are separate buckets');
    const bulk = await env.client.get('/images/list');
    assert.strictEqual(bulk.headers['x-ratelimit-limit'], '120');
    assertRateHeaders(await env.client.get('/images', undefined, { token: 'garbage' }));
  });

  it('answers 429 with the error body past the limit, then recovers as the window slides', async () => {
    await env.client.admin('POST', 'limits', { images: { limit: 3, windowSec: 1 } });
    const ok = [];
    for (let i = 0; i < 3; i += 1) ok.push(await env.client.get('/images'));
    assert.deepStrictEqual(ok.map((r) => r.headers['x-ratelimit-remaining']), ['2', '1', '0']);
    const limited = await env.client.get('/images');
    assert.strictEqual(limited.status, 429);
    assert.strictEqual(limited.body.errorCode, '429 TOO_MANY_REQUESTS');
    assert.strictEqual(typeof limited.body.timestamp, 'number');
    assertRateHeaders(limited);
    assert.strictEqual(limited.headers['x-ratelimit-remaining'], '0');
    assert.match(String(limited.headers['x-ratelimit-towait-sec']), /^\d+$/);
    // Another bucket is unaffected.
    assert.strictEqual((await env.client.get('/registry/aws-base')).status, 200);
    const back = await waitFor(async () => {
      const r = await env.client.get('/images');
      return r.status !== 429 ? r : null;
    }, { timeoutMs: 3000, intervalMs: 100, what: 'the window to slide' });
    assert.strictEqual(back.status, 204);
  });

  it('X-RateLimit-ToWait-Sec can be switched off and Retry-After on', async () => {
    await env.client.admin('POST', 'limits', { registry: { limit: 1 }, toWaitHeader: false, retryAfterHeader: true });
    await env.client.get('/registry/aws-base');
    const limited = await env.client.get('/registry/aws-base');
    assert.strictEqual(limited.status, 429);
    assert.strictEqual(limited.headers['x-ratelimit-towait-sec'], undefined);
    assert.match(String(limited.headers['retry-after']), /^\d+$/);
  });

  it('status faults: the next N calls of a named endpoint fail, then it answers normally', async () => {
    await env.client.admin('POST', 'faults', { endpoint: 'images', status: 503, count: 2 });
    const statuses = [];
    for (let i = 0; i < 3; i += 1) statuses.push(await env.client.get('/images'));
    assert.deepStrictEqual(statuses.map((r) => r.status), [503, 503, 204]);
    assert.strictEqual(statuses[0].body.errorCode, '503 SERVICE_UNAVAILABLE');
    assertRateHeaders(statuses[0]);
    assert.deepStrictEqual((await env.client.admin('GET', 'faults')).faults, [], 'an exhausted rule is removed');
  });

  it('status faults by method and path regex, with a rate as an exact fraction of calls', async () => {
    await env.client.admin('POST', 'faults', { method: 'GET', path: '^/csapi/v1\\.3/images/[0-9a-f]+$', status: 500, rate: 0.5 });
    const detail = [];
    for (let i = 0; i < 10; i += 1) detail.push((await env.client.get('/images/ffffffffffff')).status);
    assert.strictEqual(detail.filter((s) => s === 500).length, 5);
    assert.strictEqual(detail.filter((s) => s === 404).length, 5);
    assert.strictEqual((await env.client.get('/images/ffffffffffff/vuln')).status, 404, 'the regex is anchored');
    await env.client.admin('DELETE', 'faults');
    assert.strictEqual((await env.client.get('/images/ffffffffffff')).status, 404);
  });

  it('a 429 storm fault answers like the rate limiter', async () => {
    await env.client.admin('POST', 'faults', { endpoint: 'image-vuln', status: 429, count: 1 });
    const r = await env.client.get('/images/ffffffffffff/vuln');
    assert.strictEqual(r.status, 429);
    assert.strictEqual(r.body.errorCode, '429 TOO_MANY_REQUESTS');
    assertRateHeaders(r);
    assert.match(String(r.headers['x-ratelimit-towait-sec']), /^\d+$/);
  });

  it('latency faults delay the answer', async () => {
    await env.client.admin('POST', 'faults', { endpoint: 'aws-base', latencyMs: 250, count: 1 });
    const t0 = Date.now();
    const r = await env.client.get('/registry/aws-base');
    assert.strictEqual(r.status, 200);
    assert.ok(Date.now() - t0 >= 240, 'delayed');
    const t1 = Date.now();
    await env.client.get('/registry/aws-base');
    assert.ok(Date.now() - t1 < 200, 'only once');
  });

  it('reset faults drop the connection; in the after phase the call still takes effect', async () => {
    await env.client.admin('POST', 'faults', { endpoint: 'images', reset: true, count: 1 });
    await assert.rejects(env.client.get('/images'), (e) => /ECONNRESET|socket hang up/.test(`${e.code} ${e.message}`));
    assert.strictEqual((await env.client.get('/images')).status, 204);
    await env.client.admin('POST', 'faults', { endpoint: 'registry-create', reset: true, phase: 'after', count: 1 });
    await assert.rejects(env.client.post('/registry', registryBody('111122223333', 'eu-west-1')));
    const listed = await env.client.get('/registry', { filter: 'registryUri:"https://111122223333.dkr.ecr.eu-west-1.amazonaws.com"' });
    assert.strictEqual(listed.status, 200, 'the POST was applied although the client saw no answer');
    const calls = await env.client.admin('GET', 'calls');
    assert.strictEqual(calls.counts.byStatus.reset, 2);
    assert.strictEqual(calls.counts.byEndpointStatus['registry-create'].reset, 1);
  });

  it('an expireTokens fault expires every issued token mid-poll', async () => {
    await env.client.admin('POST', 'faults', { endpoint: 'image-detail', expireTokens: true, count: 1 });
    assert.strictEqual((await env.client.get('/images')).status, 204);
    const r = await env.client.get('/images/ffffffffffff');
    assert.strictEqual(r.status, 401);
    assert.match(r.body.message, /JWT expired/);
    assert.strictEqual((await env.client.get('/images')).status, 401);
    await env.client.login();
    assert.strictEqual((await env.client.get('/images')).status, 204);
  });

  it('the admin API refuses bad fault rules', async () => {
    for (const bad of [{ endpoint: 'nope', status: 500 }, { endpoint: 'images' }, { endpoint: 'images', status: 200 }, { path: '(', status: 500 }, { endpoint: 'images', status: 500, rate: 2 }]) {
      const r = await request(env.url, { method: 'POST', path: '/_sim/faults', json: bad });
      assert.strictEqual(r.status, 400, JSON.stringify(bad));
    }
  });

  it('the call log records method, path, query, status and time, with counts per endpoint and status', async () => {
    await env.client.get('/images', { filter: 'repo.repository:web', pageSize: 10 });
    await env.client.get('/images/ffffffffffff');
    await env.client.get('/registry/aws-base');
    const log = await env.client.admin('GET', 'calls');
    const images = log.calls.find((c) => c.endpoint === 'images');
    assert.strictEqual(images.method, 'GET');
    assert.strictEqual(images.path, '/csapi/v1.3/images');
    assert.deepStrictEqual(images.query, { filter: 'repo.repository:web', pageSize: '10' });
    assert.strictEqual(images.status, 204);
    assert.strictEqual(typeof images.time, 'number');
    assert.strictEqual(log.counts.byEndpoint.images, 1);
    assert.strictEqual(log.counts.byEndpoint['image-detail'], 1);
    assert.strictEqual(log.counts.byEndpoint.auth, 1);
    assert.strictEqual(log.counts.byStatus['404'], 1);
    assert.strictEqual(log.counts.byStatus['201'], 1);
    const since = await env.client.admin('GET', `calls?since=${images.seq}&endpoint=aws-base`);
    assert.deepStrictEqual(since.calls.map((c) => c.endpoint), ['aws-base']);
  });

  it('/_sim/state shows registries, connectors, schedules and image lifecycles; reset clears them', async () => {
    await createRegistry(env.client, '111122223333', 'eu-west-1');
    const state = await env.client.admin('GET', 'state');
    assert.strictEqual(state.registries.length, 1);
    assert.strictEqual(state.connectors.length, 1);
    assert.deepStrictEqual(state.schedules, []);
    assert.ok(state.images.length >= 6);
    assert.ok(state.images.every((i) => i.lifecycle === 'ABSENT'));
    assert.strictEqual(state.timings.profile, 'custom');
    await env.client.admin('POST', 'reset');
    const clean = await env.client.admin('GET', 'state');
    assert.deepStrictEqual(clean.registries, []);
    assert.deepStrictEqual(clean.connectors, []);
  });
});
