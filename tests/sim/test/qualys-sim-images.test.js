'use strict';
// Contract tests of qualys-sim images: lifecycle, list/detail/vuln shapes, QQL, paging and counts
// (reference §3, §5.7-5.9, §6.3-6.6, §6.10-6.11, §6.13, §7.1-7.2).

const { describe, it, before, after, beforeEach } = require('node:test');
const assert = require('node:assert');
const {
  startSim, seededImage, createRegistry, schedule, waitForJob, waitFor, jobState,
} = require('../qualys-sim/testkit');

const EPOCH_MS_STRING = /^\d{13}$/;
const LIST_FIELDS = [
  'created', 'updated', 'lastScanned', 'lastUsedDate', 'sha', 'repo', 'repoDigests', 'uuid', 'size',
  'vulnerabilities', 'imageId', 'associatedContainersCount', 'associatedHostsCount', 'lastVmScanDate',
  'registryUuid', 'source', 'isDockerHubOfficial', 'scanType', 'scanTypes', 'scanErrorCode', 'scanStatus',
  'lastFoundOnHost',
];
const DETAIL_FIELDS = ['author', 'label', 'operatingSystem', 'customerUuid', 'dockerVersion', 'architecture',
  'layers', 'layersCount', 'softwares', 'totalVulCount', 'vulnerabilities'];
const VULN_FIELDS = ['qid', 'title', 'severity', 'customerSeverity', 'typeDetected', 'category', 'risk', 'cveids',
  'patchAvailable', 'published', 'firstFound', 'lastFound', 'port', 'status', 'software', 'result', 'cvssInfo',
  'cvss3Info', 'threatIntel', 'discoveryType', 'authType', 'supportedBy', 'product', 'vendor', 'qdsScore',
  'layerSha', 'isExempted', 'scanType', 'vendorData', 'vulnerability'];

const WEB = seededImage('web');
const WORKER = seededImage('worker');
const SIDECAR = seededImage('sidecar');
const MIGRATE = seededImage('batch/migrate');

function expectedCounts(img) {
  const c = { severity1Count: 0, severity2Count: 0, severity3Count: 0, severity4Count: 0, severity5Count: 0 };
  for (const v of img.vulns) c[`severity${v.severity}Count`] += 1;
  return c;
}

function byShaFilter(sha) {
  return { filter: `sha:${sha}` };
}

describe('qualys-sim images', () => {
  let env;
  let reg1;
  before(async () => { env = await startSim(); });
  after(async () => { await env.handle.close(); });
  beforeEach(async () => {
    await env.client.admin('POST', 'reset');
    await env.client.login();
    reg1 = await createRegistry(env.client, WEB.account, WEB.region);
  });

  async function scanned(img) {
    return waitFor(async () => {
      const r = await env.client.get('/images', byShaFilter(img.image_sha));
      return r.status === 200 && r.body.data[0].scanStatus !== null ? r.body.data[0] : null;
    }, { what: `${img.repository} to be scanned` });
  }

  it('an image is absent until a schedule for its repo:tag runs, appears unscanned, then is scanned', async () => {
    await env.client.admin('POST', 'timings', { queueMs: 100, startMs: 50, listingMs: 100, pullMs: 100, scanMs: 400 });
    assert.strictEqual((await env.client.get('/images')).status, 204);
    assert.strictEqual((await env.client.get(`/images/${WEB.image_sha}`)).status, 404);
    const id = await schedule(env.client, reg1, [{ repo: 'web', tag: '1.4.2' }]);
    // Creating the schedule alone does not create the image.
    const early = await env.client.get('/images', byShaFilter(WEB.image_sha));
    assert.strictEqual(early.status, 204);
    assert.ok(['Created', 'Queued'].includes((await jobState(env.client, id)).status));

    const pulled = await waitFor(async () => {
      const r = await env.client.get('/images', byShaFilter(WEB.image_sha));
      return r.status === 200 ? r.body.data[0] : null;
    }, { what: 'image to appear', intervalMs: 10 });
    assert.strictEqual(pulled.lastScanned, null);
    assert.strictEqual(pulled.vulnerabilities, null);
    assert.strictEqual(pulled.scanStatus, null);
    const pulledDetail = await env.client.get(`/images/${WEB.image_sha}`);
    assert.strictEqual(pulledDetail.status, 200);
    assert.strictEqual(pulledDetail.body.vulnerabilities, null);
    const recent = await env.client.get('/images', { filter: `sha:${WEB.image_sha} and lastScanned: [now-300s ... now]` });
    assert.strictEqual(recent.status, 204, 'the Qualys polling idiom still sees nothing');

    const done = await scanned(WEB);
    assert.strictEqual(done.scanStatus, 'SUCCESS');
    assert.strictEqual(done.scanErrorCode, null);
    assert.match(done.lastScanned, EPOCH_MS_STRING);
    assert.deepStrictEqual(done.vulnerabilities, expectedCounts(WEB));
    const idiom = await env.client.get('/images', { filter: `sha:${WEB.image_sha} and lastScanned: [now-300s ... now]` });
    assert.strictEqual(idiom.status, 200);
    const job = await waitForJob(env.client, id);
    assert.strictEqual(job.status, 'Completed');
  });

  it('list items carry the documented fields and types; repo uses the bare host, digests are bare hex', async () => {
    await schedule(env.client, reg1, [{ repo: 'web', tag: '1.4.2,latest' }]);
    const item = await scanned(WEB);
    for (const f of LIST_FIELDS) assert.ok(Object.prototype.hasOwnProperty.call(item, f), `field ${f}`);
    assert.strictEqual(item.sha, WEB.image_sha);
    assert.strictEqual(item.imageId, WEB.image_sha.slice(0, 12));
    assert.match(item.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.match(item.created, EPOCH_MS_STRING);
    assert.match(item.updated, EPOCH_MS_STRING);
    assert.strictEqual(typeof item.size, 'number');
    assert.strictEqual(item.registryUuid, reg1);
    assert.deepStrictEqual(item.source, ['REGISTRY']);
    assert.ok(Array.isArray(item.scanTypes));
    assert.strictEqual(item.isDockerHubOfficial, false);
    assert.deepStrictEqual(item.repo.map((r) => r.tag).sort(), ['1.4.2', 'latest']);
    for (const r of item.repo) {
      assert.strictEqual(r.registry, WEB.host);
      assert.doesNotMatch(r.registry, /^https?:/);
      assert.strictEqual(r.repository, 'web');
    }
    assert.deepStrictEqual(item.repoDigests, [{ registry: WEB.host, digest: WEB.digest.replace(/^sha256:/, ''), repository: 'web' }]);
  });

  it('detail, /vuln and /vuln/count agree with the list counts; 12-char imageId works; unknown is 404', async () => {
    await schedule(env.client, reg1, [{ repo: 'web', tag: 'latest' }, { repo: 'worker', tag: '2.0.0' }, { repo: 'sidecar', tag: '0.9.1' }]);
    for (const img of [WEB, WORKER, SIDECAR]) {
      const item = await scanned(img);
      const detail = await env.client.get(`/images/${img.image_sha}`);
      assert.strictEqual(detail.status, 200);
      for (const f of DETAIL_FIELDS) assert.ok(Object.prototype.hasOwnProperty.call(detail.body, f), `detail field ${f}`);
      assert.strictEqual(detail.body.operatingSystem, img.operating_system);
      assert.ok(Array.isArray(detail.body.vulnerabilities), 'detail vulnerabilities is an array');
      const bySev = { severity1Count: 0, severity2Count: 0, severity3Count: 0, severity4Count: 0, severity5Count: 0 };
      for (const v of detail.body.vulnerabilities) bySev[`severity${v.severity}Count`] += 1;
      assert.deepStrictEqual(bySev, item.vulnerabilities);
      assert.strictEqual(detail.body.totalVulCount, img.vulns.length);

      const vuln = await env.client.get(`/images/${img.image_sha}/vuln`);
      assert.strictEqual(vuln.status, 200);
      assert.ok(Array.isArray(vuln.body.details), 'details[] not data[]');
      assert.strictEqual(vuln.body.data, undefined);
      assert.strictEqual(vuln.body.details.length, img.vulns.length);
      const summed = {};
      for (const v of vuln.body.details) summed[String(v.severity)] = (summed[String(v.severity)] || 0) + 1;
      assert.deepStrictEqual(vuln.body.vulnSummary.confirmed, summed);

      const count = await env.client.get(`/images/${img.image_sha}/vuln/count`);
      assert.deepStrictEqual(count.body, expectedCounts(img));
      assert.deepStrictEqual(count.body, item.vulnerabilities);

      const short = await env.client.get(`/images/${img.image_sha.slice(0, 12)}/vuln/count`);
      assert.strictEqual(short.status, 200);
      assert.deepStrictEqual(short.body, count.body);
      assert.strictEqual((await env.client.get(`/images/${img.image_sha.slice(0, 12)}`)).body.sha, img.image_sha);
    }
    const unknown = 'f'.repeat(64);
    for (const p of [`/images/${unknown}`, `/images/${unknown}/vuln`, `/images/${unknown}/vuln/count`, '/images/ffffffffffff']) {
      const r = await env.client.get(p);
      assert.strictEqual(r.status, 404, p);
      assert.strictEqual(r.body.errorCode, '404 NOT_FOUND');
    }
    assert.strictEqual((await env.client.get(`/images/sha256:${WEB.image_sha}`)).status, 404);
  });

  it('vulnerability items have the documented fields and types; type selects summary or details', async () => {
    await schedule(env.client, reg1, [{ repo: 'web', tag: '1.4.2' }]);
    const item = await scanned(WEB);
    const vuln = await env.client.get(`/images/${WEB.image_sha}/vuln`, { type: 'ALL', sort: 'qid:asc', applyException: 'false', pageNumber: 2, pageSize: 1 });
    assert.strictEqual(vuln.status, 200);
    assert.strictEqual(vuln.body.details.length, WEB.vulns.length, 'not paged: pageNumber/pageSize are ignored');
    assert.deepStrictEqual(vuln.body.details.map((v) => v.qid), WEB.vulns.map((v) => v.qid).sort((a, b) => a - b));
    for (const v of vuln.body.details) {
      for (const f of VULN_FIELDS) assert.ok(Object.prototype.hasOwnProperty.call(v, f), `vuln field ${f}`);
      const seed = WEB.vulns.find((s) => s.qid === v.qid);
      assert.strictEqual(typeof v.qid, 'number');
      assert.strictEqual(v.severity, seed.severity);
      assert.strictEqual(v.title, seed.title);
      assert.deepStrictEqual(v.cveids, seed.cves);
      assert.strictEqual(v.typeDetected, 'CONFIRMED');
      assert.strictEqual(typeof v.published, 'number');
      assert.match(v.firstFound, EPOCH_MS_STRING);
      assert.match(v.lastFound, EPOCH_MS_STRING);
      assert.strictEqual(v.lastFound, item.lastScanned);
      assert.strictEqual(v.patchAvailable, seed.fixed_version !== null);
      assert.deepStrictEqual(v.software[0], { name: seed.package, version: seed.installed_version, fixVersion: seed.fixed_version, packagePath: null, scanType: 'DYNAMIC' });
      assert.match(v.result, /^#table cols="3"\nPackage Installed_Version Required_Version\n/);
      assert.strictEqual(typeof v.cvss3Info.baseScore, 'string');
    }
    const summary = await env.client.get(`/images/${WEB.image_sha}/vuln`, { type: 'SUMMARY' });
    assert.strictEqual(summary.body.details, null);
    assert.ok(summary.body.vulnSummary.confirmed);
    assert.deepStrictEqual(summary.body.vulnSummary.potential, {});
    assert.ok(summary.body.vulnSummary.patchAvailability.confirmed);
    const details = await env.client.get(`/images/${WEB.image_sha}/vuln`, { type: 'DETAILS' });
    assert.strictEqual(details.body.vulnSummary, null);
    assert.strictEqual(details.body.details.length, WEB.vulns.length);
    assert.strictEqual((await env.client.get(`/images/${WEB.image_sha}/vuln`, { type: 'everything' })).status, 400);
    const sev5 = await env.client.get(`/images/${WEB.image_sha}/vuln`, { filter: 'severity:5' });
    assert.deepStrictEqual(sev5.body.details.map((v) => v.severity), [5]);
  });

  it('a tag or repo the registry does not hold completes the job and creates nothing', async () => {
    const id = await schedule(env.client, reg1, [{ repo: 'web', tag: 'does-not-exist' }, { repo: 'no-such-repo', tag: 'latest' }]);
    const job = await waitForJob(env.client, id);
    assert.strictEqual(job.status, 'Completed');
    assert.deepStrictEqual(job.errors, []);
    assert.strictEqual((await env.client.get('/images')).status, 204);
    // A regex tag is not a regex: ".*" is a literal tag name that no image has.
    const rx = await schedule(env.client, reg1, [{ repo: 'web', tag: '.*' }]);
    await waitForJob(env.client, rx);
    assert.strictEqual((await env.client.get('/images')).status, 204);
    // The image must be in the registry that the job scans: web lives in another account's ECR.
    const reg2 = await createRegistry(env.client, MIGRATE.account, MIGRATE.region);
    const other = await schedule(env.client, reg2, [{ repo: 'web', tag: '1.4.2' }]);
    await waitForJob(env.client, other);
    assert.strictEqual((await env.client.get('/images')).status, 204);
    const state = await env.client.admin('GET', 'state');
    assert.strictEqual(state.images.find((i) => i.sha === WEB.image_sha).lifecycle, 'ABSENT');
  });

  it('forceScan:false does not rescan a scanned image; forceScan:true does', async () => {
    await schedule(env.client, reg1, [{ repo: 'worker', tag: '2.0.0' }]);
    const first = await scanned(WORKER);
    const again = await schedule(env.client, reg1, [{ repo: 'worker', tag: '2.0.0' }], { forceScan: false });
    const job = await waitForJob(env.client, again);
    assert.strictEqual(job.status, 'Completed');
    assert.strictEqual(job.targets[0].state, 'skipped');
    const after = (await env.client.get('/images', byShaFilter(WORKER.image_sha))).body.data[0];
    assert.strictEqual(after.lastScanned, first.lastScanned);
    const forced = await schedule(env.client, reg1, [{ repo: 'worker', tag: '2.0.0' }], { forceScan: true });
    await waitForJob(env.client, forced);
    const rescanned = (await env.client.get('/images', byShaFilter(WORKER.image_sha))).body.data[0];
    assert.ok(Number(rescanned.lastScanned) > Number(first.lastScanned));
    const vulns = (await env.client.get(`/images/${WORKER.image_sha}/vuln`)).body.details;
    for (const v of vulns) {
      assert.strictEqual(v.firstFound, first.lastScanned, 'firstFound is kept across rescans');
      assert.strictEqual(v.lastFound, rescanned.lastScanned);
    }
  });

  it('the failure knob gives a non-SUCCESS scanStatus with scanErrorCode and a job in Error', async () => {
    await env.client.admin('POST', 'scan-failures', { repository: 'web', tag: '1.4.2', scanErrorCode: 'SCAN_TIMEOUT', message: 'timed out' });
    const id = await schedule(env.client, reg1, [{ repo: 'web', tag: '1.4.2' }]);
    const job = await waitForJob(env.client, id);
    assert.ok(['Error', 'Failed'].includes(job.status));
    assert.strictEqual(job.errors.length, 1);
    assert.strictEqual(job.errors[0].errorCode, 'SCAN_TIMEOUT');
    assert.strictEqual(job.errors[0].errorMessage, 'timed out');
    const item = (await env.client.get('/images', byShaFilter(WEB.image_sha))).body.data[0];
    assert.notStrictEqual(item.scanStatus, 'SUCCESS');
    assert.notStrictEqual(item.scanStatus, null);
    assert.strictEqual(item.scanErrorCode, 'SCAN_TIMEOUT');
    assert.strictEqual(item.vulnerabilities, null);
    const detail = (await env.client.get(`/images/${WEB.image_sha}`)).body;
    assert.strictEqual(detail.vulnerabilities, null);
    // A pull failure leaves the image absent and fails the job.
    await env.client.admin('POST', 'scan-failures', { sha: WORKER.image_sha, stage: 'pull', jobStatus: 'Failed' });
    const pullJob = await schedule(env.client, reg1, [{ repo: 'worker', tag: '2.0.0' }]);
    assert.strictEqual((await waitForJob(env.client, pullJob)).status, 'Failed');
    assert.strictEqual((await env.client.get(`/images/${WORKER.image_sha}`)).status, 404);
  });

  it('QQL: repo tokens, imageId, or/parentheses, unknown tokens and double encoding', async () => {
    await schedule(env.client, reg1, [{ repo: 'web', tag: '1.4.2' }, { repo: 'worker', tag: '2.0.0' }]);
    await scanned(WEB);
    await scanned(WORKER);
    const one = async (filter) => {
      const r = await env.client.get('/images', { filter });
      return r.status === 204 ? [] : r.body.data.map((d) => d.sha);
    };
    assert.deepStrictEqual(await one('repo.repository:"web"'), [WEB.image_sha]);
    assert.deepStrictEqual(await one('repo.repository:web and repo.tag:"1.4.2"'), [WEB.image_sha]);
    assert.deepStrictEqual(await one(`repo.registry:${WEB.host} and repo.repository:worker`), [WORKER.image_sha]);
    assert.deepStrictEqual(await one(`imageId:${WORKER.image_sha.slice(0, 12)}`), [WORKER.image_sha]);
    assert.deepStrictEqual((await one('repo.repository:web or repo.repository:worker')).sort(), [WEB.image_sha, WORKER.image_sha].sort());
    assert.deepStrictEqual(await one('(repo.repository:web or repo.repository:worker) and repo.tag:"2.0.0"'), [WORKER.image_sha]);
    assert.deepStrictEqual(await one(`registryUri:"https://${WEB.host}"`).then((x) => x.length), 2);
    assert.deepStrictEqual(await one('vulnerabilities.severity:5'), [WEB.image_sha]);
    assert.deepStrictEqual(await one(`lastScanned:[${Date.now() - 60000} ... now]`).then((x) => x.length), 2);
    assert.deepStrictEqual(await one("imagesInUse:'[now-7d ... now]'"), []);
    assert.deepStrictEqual(await one('repo.repository:"nope"'), []);
    assert.strictEqual((await env.client.get('/images', { filter: 'bogus:1' })).status, 400);
    assert.strictEqual((await env.client.get('/images', { filter: 'sha:' })).status, 400);
    assert.strictEqual((await env.client.get('/images', { filter: 'lastScanned:[yesterday ... now]' })).status, 400);
    const twice = encodeURIComponent(encodeURIComponent(`sha:${WEB.image_sha}`));
    const r = await env.client.get('/images', undefined, { rawQuery: `filter=${twice}` });
    assert.ok(r.status === 400 || r.status === 204, `a doubly encoded filter is not understood (got ${r.status})`);
  });

  it('paging: pageNumber and pageSize 1..1000, sort created/updated desc, pageNo is not a /images parameter', async () => {
    await schedule(env.client, reg1, [{ repo: 'web', tag: '1.4.2' }, { repo: 'worker', tag: '2.0.0' }, { repo: 'sidecar', tag: '0.9.1' }]);
    await scanned(WEB);
    await scanned(WORKER);
    await scanned(SIDECAR);
    const all = await env.client.get('/images', { sort: 'updated:desc' });
    assert.strictEqual(all.body.count, 3);
    const updated = all.body.data.map((d) => Number(d.updated));
    assert.deepStrictEqual(updated, updated.slice().sort((a, b) => b - a));
    const created = (await env.client.get('/images', { sort: 'created:desc' })).body.data.map((d) => Number(d.created));
    assert.deepStrictEqual(created, created.slice().sort((a, b) => b - a));
    const pages = [];
    for (let p = 1; p <= 3; p += 1) {
      const r = await env.client.get('/images', { pageNumber: p, pageSize: 1, sort: 'updated:desc' });
      assert.strictEqual(r.status, 200);
      assert.strictEqual(r.body.count, 3);
      pages.push(r.body.data[0].sha);
    }
    assert.deepStrictEqual(pages, all.body.data.map((d) => d.sha));
    assert.strictEqual((await env.client.get('/images', { pageNumber: 4, pageSize: 1 })).status, 204);
    const pageNo = await env.client.get('/images', { pageNo: 2, pageSize: 1, sort: 'updated:desc' });
    assert.strictEqual(pageNo.body.data[0].sha, pages[0], 'pageNo is ignored on /images');
    for (const q of [{ pageSize: 0 }, { pageSize: 1001 }, { pageNumber: 0 }, { pageNumber: 'one' }, { sort: 'nosuch:desc' }]) {
      const r = await env.client.get('/images', q);
      assert.strictEqual(r.status, 400, JSON.stringify(q));
      assert.strictEqual(r.body.errorCode, '400 BAD_REQUEST');
    }
    assert.strictEqual((await env.client.get('/images', { pageSize: 1000 })).status, 200);
  });

  it('GET /images reaches at most 10,000 records; the bulk API pages on with a Link header', async () => {
    const images = [];
    for (let i = 0; i < 10050; i += 1) {
      const hex = i.toString(16).padStart(8, '0');
      images.push({
        account: '444455556666', region: 'eu-west-1', repository: 'bulk', tags: [`t${i}`],
        digest: `sha256:${'d'.repeat(56)}${hex}`, image_sha: `${'a'.repeat(56)}${hex}`, size: 1, vulns: [],
      });
    }
    await env.client.admin('POST', 'seed', { mode: 'add', present: 'scanned', images });
    const first = await env.client.get('/images', { pageSize: 1000, pageNumber: 1 });
    assert.strictEqual(first.body.count, 10050);
    assert.strictEqual(first.body.data.length, 1000);
    assert.strictEqual((await env.client.get('/images', { pageSize: 1000, pageNumber: 10 })).status, 200);
    const beyond = await env.client.get('/images', { pageSize: 1000, pageNumber: 11 });
    assert.strictEqual(beyond.status, 400);
    const bulk = await env.client.get('/images/list', { limit: 250, filter: 'repo.repository:bulk' });
    assert.strictEqual(bulk.status, 200);
    assert.strictEqual(bulk.body.data.length, 250);
    const link = /<([^>]+)>;\s*rel=next/.exec(bulk.headers.link);
    assert.ok(link, 'Link rel=next');
    const next = new URL(link[1]);
    const page2 = await env.client.get('/images/list', Object.fromEntries(next.searchParams));
    assert.strictEqual(page2.body.data.length, 250);
    assert.notStrictEqual(page2.body.data[0].sha, bulk.body.data[0].sha);
    const none = await env.client.get('/images/list', { filter: 'repo.repository:nothing' });
    assert.strictEqual(none.status, 200);
    assert.deepStrictEqual(none.body.data, []);
    assert.strictEqual(none.headers.link, undefined);
    assert.strictEqual((await env.client.get('/images/list', { limit: 251 })).status, 400);
  });
});
