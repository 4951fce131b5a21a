'use strict';
// Fixtures shared by the qualys-sim contract tests: start a simulator, log in, create the registry
// of a seeded ECR account and run a scan job through to its end.

const { start } = require('./index');
const { SimClient, waitFor, request } = require('./client');
const { loadSeedFile, ecrHost } = require('./seed');

// Phase timings small enough for tests yet long enough to observe each lifecycle state.
const TEST_TIMINGS = { queueMs: 20, startMs: 20, listingMs: 60, pullMs: 60, scanMs: 200, jitter: 0 };

async function startSim(opts) {
  const handle = await start(Object.assign({ port: 0, profile: 'fast', timings: TEST_TIMINGS }, opts));
  const client = new SimClient(handle.url);
  await client.login();
  return { handle, client, url: handle.url };
}

function defaultSeed() {
  return loadSeedFile();
}

// The seeded image of a repository in the default seed, with its registry host.
function seededImage(repository) {
  const img = defaultSeed().images.find((i) => i.repository === repository);
  return Object.assign({ host: ecrHost(img.account, img.region) }, img);
}

function registryBody(account, region, extra) {
  return Object.assign({
    registryType: 'AWS',
    credentialType: 'AWS',
    registryUri: `https://${ecrHost(account, region)}`,
    registryName: `ecr-${account}-${region}`,
    aws: { accountId: account, region, accountType: 'Global', arn: `arn:aws:iam::${account}:role/QualysECRRole` },
  }, extra);
}

async function createRegistry(client, account, region) {
  const r = await client.post('/registry', registryBody(account, region));
  if (r.status !== 200) throw new Error(`create registry: ${r.status} ${r.text}`);
  return r.body.registryUuid;
}

function scheduleBody(repoTags, extra) {
  return Object.assign({
    name: `ECR-test-${Date.now()}`,
    onDemand: true,
    schedule: '00:00',
    forceScan: true,
    filters: [{ repoTags, days: null }],
  }, extra);
}

async function schedule(client, registryUuid, repoTags, extra) {
  const r = await client.post(`/registry/${registryUuid}/schedule`, scheduleBody(repoTags, extra));
  if (r.status !== 200) throw new Error(`create schedule: ${r.status} ${r.text}`);
  return r.body.scheduleUuid;
}

async function jobState(client, scheduleUuid) {
  const state = await client.admin('GET', 'state');
  return state.schedules.find((s) => s.scheduleUuid === scheduleUuid);
}

// Waits until the job reaches a final status and returns its state record.
function waitForJob(client, scheduleUuid, timeoutMs) {
  return waitFor(async () => {
    const job = await jobState(client, scheduleUuid);
    return job && ['Completed', 'Finished', 'Error', 'Failed'].includes(job.status) ? job : null;
  }, { timeoutMs: timeoutMs || 5000, what: `job ${scheduleUuid} to finish` });
}

module.exports = {
  TEST_TIMINGS,
  startSim,
  defaultSeed,
  seededImage,
  registryBody,
  createRegistry,
  scheduleBody,
  schedule,
  jobState,
  waitForJob,
  waitFor,
  request,
};
