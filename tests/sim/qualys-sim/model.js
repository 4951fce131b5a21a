'use strict';
// The simulated Qualys subscription: the AWS base account, connectors, registries, scan jobs and
// the images those jobs discover. Job progress is an ordered queue of timed events that is replayed
// up to "now" whenever the model is read, so no timers run and every timestamp is the event's own.

const crypto = require('crypto');
const { ApiError } = require('./respond');
const seedlib = require('./seed');
const timings = require('./timings');

const ROLE_ARN_RE = /^arn:(aws|aws-us-gov|aws-cn):iam::(\d{12}):role\/[\w+=,.@/-]{1,512}$/;
const ECR_HOST_RE = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/;
const ACCOUNT_TYPES = ['Global', 'US_Gov'];
const WEEKDAYS = ['MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY', 'SUNDAY'];
const DAY_FILTERS = [1, 2, 3, 4, 5, 6, 7, 14];
const JOB_FAIL_STATUSES = ['Error', 'Failed'];

// A name-based (version 3 layout) UUID, so an image keeps the same uuid across runs, as in Qualys samples.
function nameUuid(text) {
  const h = crypto.createHash('md5').update(String(text)).digest();
  h[6] = (h[6] & 0x0f) | 0x30;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

// The registry host of a registryUri: scheme and trailing slashes removed, lower case.
function uriHost(uri) {
  return String(uri).trim().replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '').toLowerCase();
}

function badRequest(msg) {
  return new ApiError(400, msg);
}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function requireString(obj, key, where) {
  const v = obj[key];
  if (typeof v !== 'string' || v.trim() === '') throw badRequest(`${where}${key} is required`);
  return v;
}

class Model {
  // opts: { seedDoc, profile }.
  constructor(opts) {
    const o = opts || {};
    this.initialSeed = o.seedDoc || { images: [] };
    this.initialTimings = timings.profile(o.profile || 'fast');
    this.customerUuid = nameUuid('qualys-sim-customer');
    this.reset();
  }

  // Forgets all Qualys-side state and reloads the seed given at start.
  reset() {
    this.timings = Object.assign({}, this.initialTimings);
    this.catalogue = [];
    this.images = new Map();
    this.registries = new Map();
    this.connectors = [];
    this.schedules = new Map();
    this.queue = [];
    this.eventSeq = 0;
    this.failures = [];
    this.failureSeq = 1;
    this.awsBase = { accountId: '999988887777', externalId: '5512345678901234', asString: false };
    this.trustMismatch = false;
    this.connectorCreateStatus = 200;
    this.loadSeed(this.initialSeed, { mode: 'replace' });
  }

  // ---- seed catalogue -------------------------------------------------------------------------

  // Replaces or extends the catalogue. Images the seed marks with qualys.state (or all of them when
  // opts.present is given) are known to Qualys at once, as if an earlier scan had found them.
  loadSeed(doc, opts) {
    const o = opts || {};
    const mode = o.mode || 'replace';
    if (mode !== 'replace' && mode !== 'add') throw new Error('mode must be replace or add');
    if (o.present !== undefined && o.present !== null && !seedlib.QUALYS_STATES.includes(o.present)) {
      throw new Error(`present must be one of ${seedlib.QUALYS_STATES.join(', ')}`);
    }
    const entries = seedlib.parseSeed(doc);
    if (mode === 'replace') {
      this.catalogue = entries;
    } else {
      const key = (e) => `${e.host}/${e.repository}@${e.sha}`;
      const incoming = new Set(entries.map(key));
      this.catalogue = this.catalogue.filter((e) => !incoming.has(key(e))).concat(entries);
    }
    const now = Date.now();
    for (const entry of entries) {
      const state = entry.qualys ? entry.qualys.state : o.present;
      if (!state) continue;
      const at = entry.qualys && entry.qualys.lastScanned ? entry.qualys.lastScanned : now;
      const rec = this.ensureImage(entry, at);
      for (const tag of entry.tags.length ? entry.tags : [null]) this.addRepoTag(rec, entry, tag, at);
      if (state === 'scanned') this.markScanned(rec, entry, at);
      if (state === 'failed') this.markFailed(rec, this.normaliseFailure({}), at);
    }
    return entries.length;
  }

  catalogueEntry(sha, host) {
    return this.catalogue.find((e) => e.sha === sha && (!host || e.host === host)) || null;
  }

  // ---- event queue ----------------------------------------------------------------------------

  at(time, fn) {
    this.eventSeq += 1;
    const ev = { time, seq: this.eventSeq, fn };
    let i = this.queue.length;
    while (i > 0 && (this.queue[i - 1].time > time || (this.queue[i - 1].time === time && this.queue[i - 1].seq > ev.seq))) i -= 1;
    this.queue.splice(i, 0, ev);
  }

  // Runs every event due at or before now, in time order; events may schedule further events.
  advance(now) {
    const t = now === undefined ? Date.now() : now;
    while (this.queue.length && this.queue[0].time <= t) {
      const ev = this.queue.shift();
      ev.fn(ev.time);
    }
  }

  phase(key) {
    return timings.duration(this.timings, key);
  }

  setTimings(body) {
    this.timings = timings.update(this.timings, body);
    return this.timings;
  }

  // ---- AWS base account and trust --------------------------------------------------------------

  // Admin knob: { accountId?, externalId?, rotate?, externalIdAsString?, trustMismatch?: bool | [arn] }.
  configureAwsBase(body) {
    const b = body || {};
    if (b.accountId !== undefined) {
      if (!/^\d{12}$/.test(String(b.accountId))) throw new Error('accountId must be 12 digits');
      this.awsBase.accountId = String(b.accountId);
    }
    if (b.externalId !== undefined) {
      if (!/^\d{1,30}$/.test(String(b.externalId))) throw new Error('externalId must be decimal digits');
      this.awsBase.externalId = String(b.externalId);
    }
    if (b.rotate) {
      let next;
      do next = String(1e15 + crypto.randomInt(0, 2 ** 47)); while (next === this.awsBase.externalId);
      this.awsBase.externalId = next;
    }
    if (b.externalIdAsString !== undefined) this.awsBase.asString = Boolean(b.externalIdAsString);
    if (b.trustMismatch !== undefined) {
      if (Array.isArray(b.trustMismatch)) this.trustMismatch = new Set(b.trustMismatch.map(String));
      else this.trustMismatch = Boolean(b.trustMismatch);
    }
    return this.describeAwsBase();
  }

  describeAwsBase() {
    return {
      accountId: this.awsBase.accountId,
      externalId: this.awsBase.externalId,
      externalIdAsString: this.awsBase.asString,
      trustMismatch: this.trustMismatch instanceof Set ? [...this.trustMismatch] : this.trustMismatch,
    };
  }

  // True when the simulated role's trust policy does not accept the current external ID.
  trustBroken(arn) {
    if (this.trustMismatch instanceof Set) return this.trustMismatch.has(arn);
    return this.trustMismatch === true;
  }

  checkRole(arn, accountId) {
    const m = ROLE_ARN_RE.exec(String(arn));
    if (!m) throw badRequest(`Invalid AWS role ARN "${arn}"`);
    if (accountId !== undefined && m[2] !== accountId) {
      throw badRequest(`The role ARN ${arn} belongs to account ${m[2]}, not to the registry account ${accountId}`);
    }
    if (this.trustBroken(arn)) {
      throw badRequest(`Unable to assume role ${arn}: the role trust policy does not allow account ${this.awsBase.accountId} with the current external ID`);
    }
    return m;
  }

  // ---- connectors -----------------------------------------------------------------------------

  createConnector(body, now) {
    if (!isObject(body)) throw badRequest('Request body must be a JSON object');
    const name = requireString(body, 'name', '');
    const arn = requireString(body, 'arn', '');
    if (body.externalId === undefined || body.externalId === null || String(body.externalId).trim() === '') {
      throw badRequest('externalId is required');
    }
    const accountType = body.accountType === undefined ? 'Global' : body.accountType;
    if (!ACCOUNT_TYPES.includes(accountType)) throw badRequest(`accountType must be one of ${ACCOUNT_TYPES.join(', ')}`);
    if (String(body.externalId) !== this.awsBase.externalId) {
      throw badRequest(`External ID ${body.externalId} does not match the external ID of this subscription; read /registry/aws-base again`);
    }
    this.checkRole(arn);
    if (this.connectors.some((c) => c.arn === arn)) throw badRequest(`A connector with ARN ${arn} already exists`);
    if (this.connectors.some((c) => c.name === name)) throw badRequest(`A connector named ${name} already exists`);
    const connector = {
      name,
      arn,
      description: typeof body.description === 'string' ? body.description : null,
      accountType,
      externalId: this.awsBase.externalId,
      created: now,
    };
    this.connectors.push(connector);
    return connector;
  }

  listConnectors(accountId) {
    return this.connectors.filter((c) => !accountId || ROLE_ARN_RE.exec(c.arn)[2] === accountId);
  }

  // ---- registries -----------------------------------------------------------------------------

  createRegistry(body, now) {
    if (!isObject(body)) throw badRequest('Request body must be a JSON object');
    const registryType = requireString(body, 'registryType', '');
    if (registryType !== 'AWS') throw badRequest(`registryType ${registryType} is not supported by this simulator; use AWS`);
    const registryUri = requireString(body, 'registryUri', '');
    if (!/^https:\/\//i.test(registryUri)) throw badRequest('registryUri must be an https:// URL');
    const host = uriHost(registryUri);
    const hm = ECR_HOST_RE.exec(host);
    if (!hm) throw badRequest(`registryUri ${registryUri} is not an Amazon ECR registry`);
    const credentialType = requireString(body, 'credentialType', '');
    if (credentialType !== 'AWS') throw badRequest('credentialType must be AWS for an AWS registry');
    if (!isObject(body.aws)) throw badRequest('aws is required for an AWS registry');
    const aws = body.aws;
    const accountId = requireString(aws, 'accountId', 'aws.');
    const arn = requireString(aws, 'arn', 'aws.');
    const region = requireString(aws, 'region', 'aws.');
    const accountType = requireString(aws, 'accountType', 'aws.');
    if (!/^\d{12}$/.test(accountId)) throw badRequest('aws.accountId must be 12 digits');
    if (!ACCOUNT_TYPES.includes(accountType)) throw badRequest(`aws.accountType must be one of ${ACCOUNT_TYPES.join(', ')}`);
    if ((accountType === 'US_Gov') !== region.startsWith('us-gov-')) {
      throw badRequest(`aws.region ${region} does not fit aws.accountType ${accountType}`);
    }
    if (hm[1] !== accountId || hm[2] !== region) {
      throw badRequest(`registryUri ${registryUri} is not the ECR registry of account ${accountId} in ${region}`);
    }
    this.checkRole(arn, accountId);
    for (const r of this.registries.values()) {
      if (r.host === host) throw badRequest(`Registry with URI ${registryUri} already exists`);
    }
    // Qualys creates a connector for a new role ARN, or reuses the existing one.
    let connector = this.connectors.find((c) => c.arn === arn);
    if (!connector) {
      connector = {
        name: `${typeof body.registryName === 'string' ? body.registryName : 'ecr'}-connector-${accountId}`,
        arn,
        description: `Created with registry ${registryUri}`,
        accountType,
        externalId: this.awsBase.externalId,
        created: now,
      };
      this.connectors.push(connector);
    }
    const reg = {
      uuid: crypto.randomUUID(),
      uri: registryUri,
      host,
      name: typeof body.registryName === 'string' ? body.registryName : null,
      type: registryType,
      credentialType,
      aws: { accountId, arn, region, accountType },
      created: now,
      updated: now,
    };
    this.registries.set(reg.uuid, reg);
    return reg;
  }

  registryByHost(host) {
    for (const r of this.registries.values()) if (r.host === host) return r;
    return null;
  }

  getRegistry(id) {
    return this.registries.get(id) || null;
  }

  registryImages(reg) {
    return [...this.images.values()].filter((rec) => rec.repos.some((r) => r.registry === reg.host));
  }

  // ---- schedules and jobs ---------------------------------------------------------------------

  validateSchedule(body) {
    if (!isObject(body)) throw badRequest('Request body must be a JSON object');
    const name = requireString(body, 'name', '');
    const onDemand = body.onDemand === undefined ? true : body.onDemand;
    if (typeof onDemand !== 'boolean') throw badRequest('onDemand must be a boolean');
    const forceScan = body.forceScan === undefined ? false : body.forceScan;
    if (typeof forceScan !== 'boolean') throw badRequest('forceScan must be a boolean');
    if (body.schedule !== undefined && body.schedule !== null && !/^([01]\d|2[0-3]):[0-5]\d$/.test(String(body.schedule))) {
      throw badRequest('schedule must be a UTC time "HH:MM"');
    }
    if (!onDemand) {
      if (!body.schedule) throw badRequest('schedule is required for an automatic job');
      const n = body.scheduleScanIntervalInDays;
      if (!Number.isInteger(n) || n < 1 || n > 365) throw badRequest('scheduleScanIntervalInDays must be 1..365 for an automatic job');
    }
    if (body.weekDay !== undefined && body.weekDay !== null && !WEEKDAYS.includes(body.weekDay)) {
      throw badRequest(`weekDay must be one of ${WEEKDAYS.join(', ')}`);
    }
    if (!Array.isArray(body.filters) || body.filters.length === 0) throw badRequest('filters must be a non-empty array');
    const filters = body.filters.map((f, i) => {
      if (!isObject(f)) throw badRequest(`filters[${i}] must be an object`);
      if (!Array.isArray(f.repoTags) || f.repoTags.length === 0) throw badRequest(`filters[${i}].repoTags must be a non-empty array`);
      const days = f.days === undefined ? null : f.days;
      if (days !== null && !DAY_FILTERS.includes(days)) throw badRequest(`filters[${i}].days must be null, 1..7 or 14`);
      const repoTags = f.repoTags.map((rt, j) => {
        if (!isObject(rt)) throw badRequest(`filters[${i}].repoTags[${j}] must be an object`);
        const repo = requireString(rt, 'repo', `filters[${i}].repoTags[${j}].`);
        if (rt.tag !== undefined && rt.tag !== null && typeof rt.tag !== 'string') {
          throw badRequest(`filters[${i}].repoTags[${j}].tag must be a string of comma-separated tags`);
        }
        return { repo, tag: rt.tag === undefined ? null : rt.tag };
      });
      return { repoTags, days };
    });
    return { name, onDemand, forceScan, filters };
  }

  createSchedule(registryId, body, now) {
    const reg = this.registries.get(registryId);
    if (!reg) throw new ApiError(404, `Registry ${registryId} not found`);
    const v = this.validateSchedule(body);
    const job = {
      uuid: crypto.randomUUID(),
      registryUuid: reg.uuid,
      name: v.name,
      onDemand: v.onDemand,
      forceScan: v.forceScan,
      schedule: body.schedule === undefined ? null : body.schedule,
      scheduleScanIntervalInDays: body.scheduleScanIntervalInDays === undefined ? null : body.scheduleScanIntervalInDays,
      weekDay: body.weekDay === undefined ? null : body.weekDay,
      filters: v.filters,
      status: 'Created',
      created: now,
      updated: now,
      jobStartDate: null,
      jobListingStartDate: null,
      jobListingCompletionDate: null,
      jobScanningStartDate: null,
      jobScanningCompletionDate: null,
      jobCompletionDate: null,
      errors: [],
      targets: [],
      pending: 0,
      failStatus: null,
    };
    this.schedules.set(job.uuid, job);
    // Automatic jobs wait for their daily slot, which the simulator never reaches; they stay Created.
    if (job.onDemand) this.planJob(job, now);
    return job;
  }

  listSchedules(registryId) {
    return [...this.schedules.values()].filter((j) => j.registryUuid === registryId);
  }

  planJob(job, now) {
    let t = now + this.phase('queueMs');
    this.at(t, (at) => { job.status = 'Queued'; job.updated = at; });
    t += this.phase('startMs');
    this.at(t, (at) => {
      job.status = 'Running';
      job.jobStartDate = at;
      job.jobListingStartDate = at;
      job.updated = at;
    });
    t += this.phase('listingMs');
    this.at(t, (at) => this.finishListing(job, at));
  }

  // The listing phase resolves the job's repo:tag filters against what the registry holds.
  finishListing(job, at) {
    const reg = this.registries.get(job.registryUuid);
    job.jobListingCompletionDate = at;
    job.updated = at;
    if (this.trustBroken(reg.aws.arn)) {
      job.errors.push({
        errorCode: 'AWS_ASSUME_ROLE_FAILED',
        errorMessage: `Unable to assume role ${reg.aws.arn} with the current external ID`,
        contextParams: { arn: reg.aws.arn },
      });
      job.status = 'Failed';
      job.jobCompletionDate = at;
      return;
    }
    job.jobScanningStartDate = at;
    const bySha = new Map();
    for (const f of job.filters) {
      for (const rt of f.repoTags) {
        // Tags are a comma-separated list of exact tag names; an absent or empty tag means every tag.
        const wanted = rt.tag === null ? [] : rt.tag.split(',').map((s) => s.trim()).filter(Boolean);
        for (const entry of this.catalogue) {
          if (entry.host !== reg.host || entry.repository !== rt.repo) continue;
          if (f.days !== null && entry.createdMs !== null && at - entry.createdMs > f.days * 86400000) continue;
          const tags = wanted.length ? entry.tags.filter((t) => wanted.includes(t)) : entry.tags;
          if (tags.length === 0) continue;
          const key = entry.sha;
          if (!bySha.has(key)) bySha.set(key, { sha: entry.sha, entry, tags: new Set(), state: 'listed' });
          for (const t of tags) bySha.get(key).tags.add(t);
        }
      }
    }
    job.targets = [...bySha.values()];
    for (const target of job.targets) {
      const rec = this.images.get(target.sha);
      if (rec && rec.state === 'scanned' && !job.forceScan) {
        // Already scanned and no force: the registry sensor records the tags but does not rescan.
        for (const tag of target.tags) this.addRepoTag(rec, target.entry, tag, at);
        target.state = 'skipped';
        continue;
      }
      job.pending += 1;
      this.at(at + this.phase('pullMs'), (t) => this.pullTarget(job, target, t));
    }
    if (job.pending === 0) this.completeJob(job, at);
  }

  pullTarget(job, target, at) {
    const failure = this.takeFailure(target, 'pull');
    if (failure) {
      target.state = 'pull-failed';
      this.recordJobError(job, failure, target);
      this.targetDone(job, at);
      return;
    }
    const rec = this.ensureImage(target.entry, at);
    for (const tag of target.tags) this.addRepoTag(rec, target.entry, tag, at);
    target.state = 'pulled';
    this.at(at + this.phase('scanMs'), (t) => this.scanTarget(job, target, t));
  }

  scanTarget(job, target, at) {
    const rec = this.images.get(target.sha);
    const entry = this.catalogueEntry(target.sha, target.entry.host) || target.entry;
    const failure = this.takeFailure(target, 'scan');
    if (failure) {
      this.markFailed(rec, failure, at);
      target.state = 'failed';
      this.recordJobError(job, failure, target);
    } else {
      this.markScanned(rec, entry, at);
      target.state = 'scanned';
    }
    this.targetDone(job, at);
  }

  recordJobError(job, failure, target) {
    job.errors.push({
      errorCode: failure.scanErrorCode,
      errorMessage: failure.message,
      contextParams: { repo: target.entry.repository, tags: [...target.tags].join(','), sha: target.sha },
    });
    job.failStatus = failure.jobStatus;
  }

  targetDone(job, at) {
    job.pending -= 1;
    if (job.pending === 0) this.completeJob(job, at);
  }

  completeJob(job, at) {
    job.status = job.errors.length ? job.failStatus || 'Error' : 'Completed';
    job.jobScanningCompletionDate = at;
    job.jobCompletionDate = at;
    job.updated = at;
  }

  // ---- scan-failure knobs ---------------------------------------------------------------------

  // { sha?, repository?, tag?, registry?, stage?: scan|pull, scanErrorCode?, message?, jobStatus?, count? }
  normaliseFailure(body) {
    const b = body || {};
    const stage = b.stage === undefined ? 'scan' : b.stage;
    if (stage !== 'scan' && stage !== 'pull') throw new Error('stage must be scan or pull');
    const jobStatus = b.jobStatus === undefined ? 'Error' : b.jobStatus;
    if (!JOB_FAIL_STATUSES.includes(jobStatus)) throw new Error(`jobStatus must be one of ${JOB_FAIL_STATUSES.join(', ')}`);
    if (b.count !== undefined && (!Number.isInteger(b.count) || b.count < 1)) throw new Error('count must be a positive integer');
    return {
      id: `sf${this.failureSeq}`,
      sha: b.sha === undefined ? null : String(b.sha),
      repository: b.repository === undefined ? null : String(b.repository),
      tag: b.tag === undefined ? null : String(b.tag),
      registry: b.registry === undefined ? null : uriHost(b.registry),
      stage,
      scanErrorCode: b.scanErrorCode === undefined ? (stage === 'pull' ? 'IMAGE_PULL_FAILED' : 'IMAGE_SCAN_FAILED') : String(b.scanErrorCode),
      message: b.message === undefined ? (stage === 'pull' ? 'Failed to pull image from registry' : 'Image scan failed') : String(b.message),
      jobStatus,
      count: b.count === undefined ? null : b.count,
    };
  }

  addFailure(body) {
    const f = this.normaliseFailure(body);
    this.failureSeq += 1;
    this.failures.push(f);
    return f;
  }

  takeFailure(target, stage) {
    const f = this.failures.find((x) => x.stage === stage
      && (!x.sha || target.sha === x.sha || target.sha.startsWith(x.sha))
      && (!x.repository || x.repository === target.entry.repository)
      && (!x.tag || target.tags.has(x.tag))
      && (!x.registry || x.registry === target.entry.host));
    if (!f) return null;
    if (f.count !== null) {
      f.count -= 1;
      if (f.count === 0) this.failures = this.failures.filter((x) => x !== f);
    }
    return f;
  }

  // ---- images ---------------------------------------------------------------------------------

  ensureImage(entry, at) {
    let rec = this.images.get(entry.sha);
    if (!rec) {
      rec = {
        sha: entry.sha,
        imageId: entry.sha.slice(0, 12),
        uuid: nameUuid(entry.sha),
        created: entry.createdMs !== null ? entry.createdMs : at,
        firstFound: at,
        updated: at,
        lastScanned: null,
        state: 'pulled',
        scanStatus: null,
        scanErrorCode: null,
        scanErrorMessage: null,
        repos: [],
        digests: [],
        size: entry.size,
        operatingSystem: null,
        vulns: null,
        qidFirstFound: new Map(),
      };
      this.images.set(entry.sha, rec);
    }
    return rec;
  }

  addRepoTag(rec, entry, tag, at) {
    if (!rec.repos.some((r) => r.registry === entry.host && r.repository === entry.repository && r.tag === tag)) {
      rec.repos.push({ registry: entry.host, repository: entry.repository, tag });
      rec.updated = at;
    }
    // Qualys samples give repoDigests[].digest as 64 hex without the "sha256:" prefix (D-IMGLIST, D-IMGDET).
    const digest = entry.digest.replace(/^sha256:/, '');
    if (!rec.digests.some((d) => d.registry === entry.host && d.repository === entry.repository && d.digest === digest)) {
      rec.digests.push({ registry: entry.host, repository: entry.repository, digest });
    }
  }

  markScanned(rec, entry, at) {
    rec.vulns = entry.vulns.map((v) => {
      if (!rec.qidFirstFound.has(v.qid)) rec.qidFirstFound.set(v.qid, at);
      return Object.assign({}, v, { firstFound: rec.qidFirstFound.get(v.qid), lastFound: at });
    });
    rec.state = 'scanned';
    rec.scanStatus = 'SUCCESS';
    rec.scanErrorCode = null;
    rec.scanErrorMessage = null;
    rec.operatingSystem = entry.operatingSystem;
    rec.size = entry.size;
    rec.lastScanned = at;
    rec.updated = at;
  }

  // A failed scan records the attempt time in lastScanned but no vulnerabilities.
  markFailed(rec, failure, at) {
    rec.vulns = null;
    rec.state = 'failed';
    rec.scanStatus = 'FAILED';
    rec.scanErrorCode = failure.scanErrorCode;
    rec.scanErrorMessage = failure.message;
    rec.lastScanned = at;
    rec.updated = at;
  }

  // Finds an image by 64-hex sha or by its 12-hex imageId; anything else is not found.
  findImage(id) {
    const s = String(id);
    if (/^[0-9a-f]{64}$/.test(s)) return this.images.get(s) || null;
    if (/^[0-9a-f]{12}$/.test(s)) {
      for (const rec of this.images.values()) if (rec.imageId === s) return rec;
    }
    return null;
  }

  registryFor(rec) {
    return rec.repos.length ? this.registryByHost(rec.repos[0].registry) : null;
  }

  // ---- state dump for /_sim/state -------------------------------------------------------------

  lifecycle(sha) {
    const rec = this.images.get(sha);
    if (!rec) return 'ABSENT';
    return { pulled: 'PULLED', scanned: 'SCANNED', failed: 'FAILED' }[rec.state];
  }
}

module.exports = { Model, nameUuid, uriHost };
