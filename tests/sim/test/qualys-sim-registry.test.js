'use strict';
// Contract tests of qualys-sim registry endpoints: aws-base, connectors, registries, schedules
// (reference §5.1-5.6, §6.7-6.10, §7.2-7.5).

const { describe, it, before, after, beforeEach } = require('node:test');
const assert = require('node:assert');
const { startSim, registryBody, createRegistry, scheduleBody, schedule, waitForJob, request } = require('../qualys-sim/testkit');

const A1 = '111122223333';
const R1 = 'eu-west-1';
const A2 = '222233334444';
const R2 = 'us-east-1';
const URI1 = `https://${A1}.dkr.ecr.${R1}.amazonaws.com`;
const EPOCH_MS_STRING = /^\d{13}$/;

const REGISTRY_FIELDS = [
  'registryUuid', 'registryUri', 'registryName', 'registryType', 'providerType', 'awsAccountId', 'awsRegion',
  'dockerHubOrg', 'created', 'updated', 'lastScanned', 'repoCount', 'totalImages', 'totalScannedImages',
  'totalVulnerableImages', 'scheduleStatusList',
];

describe('qualys-sim registry API', () => {
  let env;
  before(async () => { env = await startSim(); });
  after(async () => { await env.handle.close(); });
  beforeEach(async () => {
    await env.client.admin('POST', 'reset');
    await env.client.login();
  });

  it('GET /registry/aws-base gives accountId as a string and externalId as a JSON number', async () => {
    const r = await env.client.get('/registry/aws-base');
    assert.strictEqual(r.status, 200);
    assert.match(r.body.accountId, /^\d{12}$/);
    assert.strictEqual(typeof r.body.externalId, 'number');
    assert.match(r.text, /"externalId":\d+[,}]/);
    const again = await env.client.get('/registry/aws-base');
    assert.strictEqual(again.text, r.text, 'stable per subscription');
    // A value beyond 2^53 is written as an exact number token, for clients that keep the raw text.
    await env.client.admin('POST', 'aws-base', { externalId: '81465022127344101234' });
    const big = await env.client.get('/registry/aws-base');
    assert.match(big.text, /"externalId":81465022127344101234}/);
    // A client that echoes the raw token back as a JSON number is understood exactly.
    const raw = await request(env.url, {
      method: 'POST',
      path: '/csapi/v1.3/registry/aws/connector',
      token: env.client.token,
      headers: { 'Content-Type': 'application/json' },
      text: `{"name":"big","arn":"arn:aws:iam::${A1}:role/QualysECRRole","externalId":81465022127344101234,"accountType":"Global"}`,
    });
    assert.strictEqual(raw.status, 200);
  });

  it('connectors: top-level array, create answers 200 with no body, wrong external ID is 400', async () => {
    const empty = await env.client.get('/registry/aws/connectors');
    assert.strictEqual(empty.status, 200);
    assert.deepStrictEqual(empty.body, []);
    const base = (await env.client.get('/registry/aws-base')).body;
    const extText = (await env.client.get('/registry/aws-base')).text.match(/"externalId":(\d+)/)[1];
    const body = {
      name: 'ecr-connector-1', description: 'ECR scanning', arn: `arn:aws:iam::${A1}:role/QualysECRRole`,
      externalId: extText, accountType: 'Global',
    };
    const created = await env.client.post('/registry/aws/connector', body);
    assert.strictEqual(created.status, 200);
    assert.strictEqual(created.text, '');
    const list = await env.client.get('/registry/aws/connectors');
    assert.ok(Array.isArray(list.body));
    assert.deepStrictEqual(list.body, [{ name: 'ecr-connector-1', arn: body.arn, description: 'ECR scanning' }]);
    const byAccount = await env.client.get(`/registry/aws/connectors/${A1}`);
    assert.strictEqual(byAccount.body.length, 1);
    assert.deepStrictEqual((await env.client.get(`/registry/aws/connectors/${A2}`)).body, []);
    const dup = await env.client.post('/registry/aws/connector', Object.assign({}, body, { name: 'other' }));
    assert.strictEqual(dup.status, 400);
    assert.strictEqual(dup.body.errorCode, '400 BAD_REQUEST');
    // After the external ID rotates, the old one is refused.
    await env.client.admin('POST', 'aws-base', { rotate: true });
    const rotated = (await env.client.get('/registry/aws-base')).body;
    assert.notStrictEqual(rotated.externalId, base.externalId);
    const stale = await env.client.post('/registry/aws/connector', Object.assign({}, body, { name: 'c2', arn: `arn:aws:iam::${A2}:role/QualysECRRole` }));
    assert.strictEqual(stale.status, 400);
    assert.match(stale.body.message, /External ID/);
    await env.client.admin('POST', 'config', { connectorCreateStatus: 201 });
    const fresh = await env.client.post('/registry/aws/connector', Object.assign({}, body, {
      name: 'c3', arn: `arn:aws:iam::${A2}:role/QualysECRRole`, externalId: String(rotated.externalId),
    }));
    assert.strictEqual(fresh.status, 201);
  });

  it('POST /registry answers {registryUuid}; the list has every documented field with its type', async () => {
    const created = await env.client.post('/registry', registryBody(A1, R1));
    assert.strictEqual(created.status, 200);
    assert.match(created.body.registryUuid, /^[0-9a-f-]{36}$/);
    const r = await env.client.get('/registry', { filter: `registryUri:"${URI1}"` });
    assert.strictEqual(r.status, 200);
    assert.strictEqual(r.body.count, 1);
    const reg = r.body.data[0];
    assert.deepStrictEqual(Object.keys(reg).sort(), REGISTRY_FIELDS.slice().sort());
    assert.strictEqual(reg.registryUuid, created.body.registryUuid);
    assert.strictEqual(reg.registryUri, URI1);
    assert.strictEqual(reg.registryType, 'AWS');
    assert.strictEqual(reg.awsAccountId, A1);
    assert.strictEqual(reg.awsRegion, R1);
    assert.strictEqual(reg.dockerHubOrg, null);
    assert.match(reg.created, EPOCH_MS_STRING);
    assert.match(reg.updated, EPOCH_MS_STRING);
    assert.strictEqual(reg.lastScanned, null);
    for (const k of ['repoCount', 'totalImages', 'totalScannedImages', 'totalVulnerableImages']) assert.strictEqual(reg[k], 0);
    assert.deepStrictEqual(reg.scheduleStatusList, {});
    // Creating the registry with a role ARN also created (or reused) its connector.
    const connectors = (await env.client.get('/registry/aws/connectors')).body;
    assert.strictEqual(connectors.length, 1);
    assert.strictEqual(connectors[0].arn, `arn:aws:iam::${A1}:role/QualysECRRole`);
    const detail = await env.client.get(`/registry/${reg.registryUuid}`);
    assert.strictEqual(detail.status, 200);
    assert.strictEqual(detail.body.aws.arn, `arn:aws:iam::${A1}:role/QualysECRRole`);
    assert.strictEqual(detail.body.aws.accountType, 'Global');
    assert.strictEqual((await env.client.get('/registry/00000000-0000-0000-0000-000000000000')).status, 404);
  });

  it('GET /registry answers 204 when nothing matches, and 400 for a doubly encoded filter', async () => {
    assert.strictEqual((await env.client.get('/registry')).status, 204);
    await createRegistry(env.client, A1, R1);
    const none = await env.client.get('/registry', { filter: `registryUri:"https://${A2}.dkr.ecr.${R2}.amazonaws.com"` });
    assert.strictEqual(none.status, 204);
    assert.strictEqual(none.text, '');
    // The bare host (no scheme) is not the registryUri either: the match is exact.
    assert.strictEqual((await env.client.get('/registry', { filter: `registryUri:"${A1}.dkr.ecr.${R1}.amazonaws.com"` })).status, 204);
    const twice = encodeURIComponent(encodeURIComponent(`registryUri:"${URI1}"`));
    const r = await env.client.get('/registry', undefined, { rawQuery: `filter=${twice}` });
    assert.ok(r.status === 400 || r.status === 204, `double encoding is not understood (got ${r.status})`);
    assert.notStrictEqual(r.status, 200);
    assert.strictEqual((await env.client.get('/registry', { filter: 'nosuchtoken:1' })).status, 400);
  });

  it('refuses duplicate URIs, role ARNs of another account, missing aws fields and broken trust', async () => {
    await createRegistry(env.client, A1, R1);
    const dup = await env.client.post('/registry', registryBody(A1, R1));
    assert.strictEqual(dup.status, 400);
    assert.strictEqual(dup.body.errorCode, '400 BAD_REQUEST');
    const dupSlash = await env.client.post('/registry', registryBody(A1, R1, { registryUri: `${URI1}/` }));
    assert.strictEqual(dupSlash.status, 400);
    const otherAccount = registryBody(A2, R2);
    otherAccount.aws.arn = `arn:aws:iam::${A1}:role/QualysECRRole`;
    assert.strictEqual((await env.client.post('/registry', otherAccount)).status, 400);
    for (const field of ['accountId', 'arn', 'region', 'accountType']) {
      const body = registryBody(A2, R2);
      delete body.aws[field];
      const r = await env.client.post('/registry', body);
      assert.strictEqual(r.status, 400, `missing aws.${field}`);
    }
    await env.client.admin('POST', 'aws-base', { trustMismatch: true });
    const broken = await env.client.post('/registry', registryBody(A2, R2));
    assert.strictEqual(broken.status, 400);
    assert.match(broken.body.message, /assume role/);
    await env.client.admin('POST', 'aws-base', { trustMismatch: false });
    assert.strictEqual((await env.client.post('/registry', registryBody(A2, R2))).status, 200);
    const noType = await env.client.post('/registry', registryBody(A2, R2), { headers: { 'Content-Type': 'text/plain' } });
    assert.strictEqual(noType.status, 415);
  });

  it('/registry paging accepts pageNo and pageNumber, and refuses pageSize 0 or 1001', async () => {
    const u1 = await createRegistry(env.client, A1, R1);
    await new Promise((r) => setTimeout(r, 5));
    const u2 = await createRegistry(env.client, A2, R2);
    const p1 = await env.client.get('/registry', { pageNo: 1, pageSize: 1, sort: 'created:asc' });
    const p2 = await env.client.get('/registry', { pageNo: 2, pageSize: 1, sort: 'created:asc' });
    const q2 = await env.client.get('/registry', { pageNumber: 2, pageSize: 1, sort: 'created:asc' });
    assert.strictEqual(p1.body.data[0].registryUuid, u1);
    assert.strictEqual(p2.body.data[0].registryUuid, u2);
    assert.strictEqual(q2.body.data[0].registryUuid, u2);
    assert.strictEqual(p2.body.count, 2);
    assert.strictEqual((await env.client.get('/registry', { pageNo: 3, pageSize: 1 })).status, 204);
    assert.strictEqual((await env.client.get('/registry', { pageSize: 0 })).status, 400);
    assert.strictEqual((await env.client.get('/registry', { pageSize: 1001 })).status, 400);
    assert.strictEqual((await env.client.get('/registry', { pageNo: 'x' })).status, 400);
  });

  it('schedules: 404 for an unknown registry, 400 for a bad body, {scheduleUuid} and the documented listing', async () => {
    const missing = await env.client.post('/registry/00000000-0000-0000-0000-000000000000/schedule', scheduleBody([{ repo: 'web', tag: '1.4.2' }]));
    assert.strictEqual(missing.status, 404);
    assert.strictEqual(missing.body.errorCode, '404 NOT_FOUND');
    const reg = await createRegistry(env.client, A1, R1);
    assert.strictEqual((await env.client.get(`/registry/${reg}/schedule`)).status, 204);
    assert.strictEqual((await env.client.post(`/registry/${reg}/schedule`, { name: 'x', filters: [] })).status, 400);
    assert.strictEqual((await env.client.post(`/registry/${reg}/schedule`, scheduleBody([{ tag: 'x' }]))).status, 400);
    assert.strictEqual((await env.client.post(`/registry/${reg}/schedule`, scheduleBody([{ repo: 'web', tag: '1.4.2' }], { schedule: '25:00' }))).status, 400);
    const created = await env.client.post(`/registry/${reg}/schedule`, scheduleBody([{ repo: 'web', tag: '1.4.2' }]));
    assert.strictEqual(created.status, 200);
    assert.deepStrictEqual(Object.keys(created.body), ['scheduleUuid'], 'no scheduleId key');
    const job = await waitForJob(env.client, created.body.scheduleUuid);
    assert.strictEqual(job.status, 'Completed');
    const list = await env.client.get(`/registry/${reg}/schedule`, { pageNo: 1, pageSize: 10 });
    assert.strictEqual(list.status, 200);
    assert.strictEqual(list.body.count, 1);
    const s = list.body.data[0];
    assert.strictEqual(s.scheduleUuid, created.body.scheduleUuid);
    assert.strictEqual(s.status, 'Completed');
    assert.strictEqual(s.onDemand, true);
    for (const k of ['created', 'updated', 'jobStartDate', 'jobListingStartDate', 'jobListingCompletionDate',
      'jobScanningStartDate', 'jobScanningCompletionDate', 'jobCompletionDate']) {
      assert.match(s[k], EPOCH_MS_STRING, k);
    }
    assert.ok(Number(s.jobListingStartDate) <= Number(s.jobListingCompletionDate));
    assert.ok(Number(s.jobListingCompletionDate) <= Number(s.jobScanningCompletionDate));
    assert.deepStrictEqual(s.errors, []);
    assert.deepStrictEqual(s.filters, [{ repoTags: [{ repo: 'web', tag: '1.4.2' }], days: null }]);
    const regItem = (await env.client.get('/registry')).body.data[0];
    assert.deepStrictEqual(regItem.scheduleStatusList, { Completed: 1 });
    assert.strictEqual(regItem.totalImages, 1);
    assert.strictEqual(regItem.totalScannedImages, 1);
    assert.strictEqual(regItem.totalVulnerableImages, 1);
    assert.strictEqual(regItem.repoCount, 1);
    assert.match(regItem.lastScanned, EPOCH_MS_STRING);
  });

  it('a job walks Created -> Queued -> Running -> Completed', async () => {
    await env.client.admin('POST', 'timings', { queueMs: 150, startMs: 150, listingMs: 150, pullMs: 50, scanMs: 50 });
    const reg = await createRegistry(env.client, A1, R1);
    const id = await schedule(env.client, reg, [{ repo: 'sidecar', tag: '0.9.1' }]);
    const seen = new Set();
    const { jobState, waitFor } = require('../qualys-sim/testkit');
    await waitFor(async () => {
      const job = await jobState(env.client, id);
      seen.add(job.status);
      return job.status === 'Completed';
    }, { timeoutMs: 5000, intervalMs: 15, what: 'job to complete' });
    assert.deepStrictEqual([...seen].filter((s) => s !== 'Completed'), ['Created', 'Queued', 'Running']);
  });

  it('a job fails when the role trust no longer accepts the external ID', async () => {
    const reg = await createRegistry(env.client, A1, R1);
    await env.client.admin('POST', 'aws-base', { trustMismatch: [`arn:aws:iam::${A1}:role/QualysECRRole`] });
    const id = await schedule(env.client, reg, [{ repo: 'web', tag: '1.4.2' }]);
    const job = await waitForJob(env.client, id);
    assert.strictEqual(job.status, 'Failed');
    assert.strictEqual(job.errors.length, 1);
    assert.strictEqual(typeof job.errors[0].errorCode, 'string');
    assert.strictEqual((await env.client.get('/images')).status, 204);
    const raw = await request(env.url, { path: '/csapi/v1.3/images/2582034a3b2a', token: env.client.token });
    assert.strictEqual(raw.status, 404);
  });
});
