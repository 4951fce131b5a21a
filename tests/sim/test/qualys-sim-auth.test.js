'use strict';
// Contract tests of qualys-sim authentication: POST /auth, bearer checks, token expiry (reference §2, §6.1-2).

const { describe, it, before, after, beforeEach } = require('node:test');
const assert = require('node:assert');
const { startSim, request, waitFor } = require('../qualys-sim/testkit');
const { decodePayload } = require('../qualys-sim/jwt');

const B64URL = /^[A-Za-z0-9_-]+$/;
const STATIC_TOKEN = 'static-api-token-for-tests';

function assertErrorBody(r, status) {
  assert.strictEqual(r.status, status);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  assert.strictEqual(r.body.errorCode.split(' ')[0], String(status));
  assert.match(r.body.errorCode, /^\d{3} [A-Z_]+$/);
  assert.strictEqual(typeof r.body.message, 'string');
  assert.strictEqual(typeof r.body.timestamp, 'number');
  assert.ok(Math.abs(r.body.timestamp - Date.now()) < 60000, 'timestamp is epoch ms now');
}

describe('qualys-sim auth', () => {
  let env;
  before(async () => { env = await startSim({ apiToken: STATIC_TOKEN }); });
  after(async () => { await env.handle.close(); });
  beforeEach(async () => {
    await env.client.admin('POST', 'reset');
    await env.client.login();
  });

  it('POST /auth answers 201 with a raw three-segment HS512 JWT in plain text', async () => {
    const before = Math.floor(Date.now() / 1000);
    const r = await request(env.url, {
      method: 'POST',
      path: '/auth',
      form: { username: 'qfs-sim-user', password: 'qfs-sim-password', token: 'true', permissions: 'true' },
    });
    assert.strictEqual(r.status, 201);
    assert.doesNotMatch(String(r.headers['content-type']), /json/);
    const token = r.text.trim();
    const parts = token.split('.');
    assert.strictEqual(parts.length, 3);
    for (const p of parts) assert.match(p, B64URL);
    const header = JSON.parse(Buffer.from(parts[0].replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString());
    assert.strictEqual(header.alg, 'HS512');
    const claims = decodePayload(token);
    assert.strictEqual(claims.sub, 'qfs-sim-user');
    assert.ok(Array.isArray(claims.modulesAllowed) && claims.modulesAllowed.includes('CS'));
    assert.ok(claims.iat >= before && claims.iat <= before + 5);
    const ttl = claims.exp - claims.iat;
    assert.ok(ttl >= 4 * 3600 && ttl <= 4 * 3600 + 2, `default TTL is 4 h, got ${ttl}s`);
    const ok = await request(env.url, { path: '/csapi/v1.3/registry/aws-base', token });
    assert.strictEqual(ok.status, 200);
  });

  it('refuses bad credentials with 401 and a missing token=true with 400', async () => {
    const bad = await request(env.url, { method: 'POST', path: '/auth', form: { username: 'qfs-sim-user', password: 'wrong', token: 'true' } });
    assertErrorBody(bad, 401);
    const noFlag = await request(env.url, { method: 'POST', path: '/auth', form: { username: 'qfs-sim-user', password: 'qfs-sim-password' } });
    assertErrorBody(noFlag, 400);
    const asJson = await request(env.url, { method: 'POST', path: '/auth', json: { username: 'qfs-sim-user', password: 'qfs-sim-password', token: true } });
    assert.ok(asJson.status === 400 || asJson.status === 401, 'a JSON body is not a form');
  });

  it('URL-decodes form fields once, so passwords with & = + work when encoded', async () => {
    await env.client.admin('POST', 'config', { password: 'p&ss=w+rd %' });
    const r = await request(env.url, { method: 'POST', path: '/auth', form: { username: 'qfs-sim-user', password: 'p&ss=w+rd %', token: 'true' } });
    assert.strictEqual(r.status, 201);
    const raw = await request(env.url, {
      method: 'POST',
      path: '/auth',
      text: 'username=qfs-sim-user&password=p&ss=w+rd %&token=true',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    assert.strictEqual(raw.status, 401, 'an unencoded password is split at & and fails');
  });

  it('answers 401 with the error body for a missing, malformed or foreign bearer token', async () => {
    const none = await request(env.url, { path: '/csapi/v1.3/images' });
    assertErrorBody(none, 401);
    const garbled = await request(env.url, { path: '/csapi/v1.3/images', token: 'not-a-jwt' });
    assertErrorBody(garbled, 401);
    assert.doesNotMatch(garbled.body.message, /JWT expired/);
    const parts = env.client.token.split('.');
    const forged = `${parts[0]}.${parts[1]}.${Buffer.from('x'.repeat(64)).toString('base64url')}`;
    const wrongSig = await request(env.url, { path: '/csapi/v1.3/images', token: forged });
    assertErrorBody(wrongSig, 401);
    const basic = await request(env.url, { path: '/csapi/v1.3/images', headers: { Authorization: 'Basic eDp5' } });
    assertErrorBody(basic, 401);
  });

  it('answers 401 "JWT expired" once tokens are expired, and a fresh login works again', async () => {
    const token = env.client.token;
    assert.strictEqual((await request(env.url, { path: '/csapi/v1.3/registry/aws-base', token })).status, 200);
    await env.client.admin('POST', 'expire-tokens', {});
    const r = await request(env.url, { path: '/csapi/v1.3/images/abc', token });
    assertErrorBody(r, 401);
    assert.match(r.body.message, /JWT expired/);
    await env.client.login();
    assert.strictEqual((await env.client.get('/registry/aws-base')).status, 200);
  });

  it('lets tokens lapse after a configured TTL', async () => {
    await env.client.admin('POST', 'config', { tokenTtlSec: 1 });
    const token = await env.client.login();
    const claims = decodePayload(token);
    assert.ok(claims.exp - claims.iat <= 2);
    assert.strictEqual((await request(env.url, { path: '/csapi/v1.3/registry/aws-base', token })).status, 200);
    const expired = await waitFor(async () => {
      const r = await request(env.url, { path: '/csapi/v1.3/registry/aws-base', token });
      return r.status === 401 ? r : null;
    }, { timeoutMs: 4000, intervalMs: 100, what: 'token to lapse' });
    assert.match(expired.body.message, /JWT expired/);
  });

  it('accepts a static --api-token until it is expired explicitly', async () => {
    const r = await request(env.url, { path: '/csapi/v1.3/registry/aws-base', token: STATIC_TOKEN });
    assert.strictEqual(r.status, 200);
    await env.client.admin('POST', 'expire-tokens', {});
    assert.strictEqual((await request(env.url, { path: '/csapi/v1.3/registry/aws-base', token: STATIC_TOKEN })).status, 200);
    await env.client.admin('POST', 'expire-tokens', { includeStatic: true });
    const gone = await request(env.url, { path: '/csapi/v1.3/registry/aws-base', token: STATIC_TOKEN });
    assert.strictEqual(gone.status, 401);
    assert.match(gone.body.message, /JWT expired/);
  });

  it('answers 403 with the documented body when the token lacks the CS module', async () => {
    await env.client.admin('POST', 'config', { modulesAllowed: ['VM'] });
    const token = await env.client.login();
    assert.deepStrictEqual(decodePayload(token).modulesAllowed, ['VM']);
    const r = await request(env.url, { path: '/csapi/v1.3/images', token });
    assertErrorBody(r, 403);
    assert.strictEqual(r.body.errorCode, '403 FORBIDDEN');
    assert.strictEqual(r.body.message, 'Request Forbidden');
  });

  it('does not rate limit /auth and sends no rate-limit headers there', async () => {
    await env.client.admin('POST', 'limits', { registry: { limit: 1 }, images: { limit: 1 } });
    for (let i = 0; i < 5; i += 1) {
      const r = await request(env.url, { method: 'POST', path: '/auth', form: { username: 'qfs-sim-user', password: 'qfs-sim-password', token: 'true' } });
      assert.strictEqual(r.status, 201);
      assert.strictEqual(r.headers['x-ratelimit-limit'], undefined);
    }
  });
});
