'use strict';
// Renders model records into the JSON shapes of the CS API: registries, schedules, images, vulns.
// Times are epoch-ms strings (created, updated, lastScanned, firstFound, lastFound) and unknown
// values are null, as in the Qualys samples; published is an epoch-ms number.

function ms(v) {
  return v === null || v === undefined ? null : String(v);
}

const CVSS3 = { 5: '9.8', 4: '7.5', 3: '5.3', 2: '3.7', 1: '2.0' };
const CVSS2 = { 5: '10.0', 4: '7.8', 3: '5.0', 2: '4.3', 1: '2.1' };
const QDS = { 5: 95, 4: 72, 3: 50, 2: 30, 1: 12 };

function severityCounts(vulns) {
  const c = { severity1Count: 0, severity2Count: 0, severity3Count: 0, severity4Count: 0, severity5Count: 0 };
  for (const v of vulns || []) c[`severity${v.severity}Count`] += 1;
  return c;
}

function temporal(score) {
  return (Math.round(Number(score) * 0.9 * 10) / 10).toFixed(1);
}

// "Alpine Linux 3.19.1" -> "Alpine Linux": the vulnerability category names the OS family.
function category(os) {
  if (!os) return 'Local';
  return os.replace(/\s+[\d.]+.*$/, '') || os;
}

// ---- registries ---------------------------------------------------------------------------------

function registryItem(model, reg) {
  const images = model.registryImages(reg);
  const scanned = images.filter((i) => i.state === 'scanned');
  const repos = new Set();
  for (const img of images) for (const r of img.repos) if (r.registry === reg.host) repos.add(r.repository);
  const statusCounts = {};
  for (const job of model.listSchedules(reg.uuid)) statusCounts[job.status] = (statusCounts[job.status] || 0) + 1;
  const last = images.reduce((m, i) => (i.lastScanned !== null && i.lastScanned > m ? i.lastScanned : m), 0);
  return {
    registryUuid: reg.uuid,
    registryUri: reg.uri,
    registryName: reg.name,
    registryType: reg.type,
    providerType: 'AWS',
    awsAccountId: reg.aws.accountId,
    awsRegion: reg.aws.region,
    dockerHubOrg: null,
    created: ms(reg.created),
    updated: ms(reg.updated),
    lastScanned: last ? ms(last) : null,
    repoCount: repos.size,
    totalImages: images.length,
    totalScannedImages: scanned.length,
    totalVulnerableImages: scanned.filter((i) => i.vulns && i.vulns.length > 0).length,
    scheduleStatusList: statusCounts,
  };
}

function connectorItem(c) {
  return { name: c.name, arn: c.arn, description: c.description };
}

function registryDetail(model, reg) {
  return Object.assign(registryItem(model, reg), {
    credentialType: reg.credentialType,
    aws: {
      accountId: reg.aws.accountId,
      arn: reg.aws.arn,
      region: reg.aws.region,
      accountType: reg.aws.accountType,
      externalId: null,
    },
    connectors: model.connectors.filter((c) => c.arn === reg.aws.arn).map(connectorItem),
    credential: null,
  });
}

// ---- schedules ----------------------------------------------------------------------------------

function scheduleItem(job) {
  return {
    scheduleUuid: job.uuid,
    name: job.name,
    onDemand: job.onDemand,
    forceScan: job.forceScan,
    schedule: job.schedule,
    scheduleScanIntervalInDays: job.scheduleScanIntervalInDays,
    weekDay: job.weekDay,
    filters: job.filters.map((f) => ({ repoTags: f.repoTags.map((rt) => ({ repo: rt.repo, tag: rt.tag })), days: f.days })),
    status: job.status,
    created: ms(job.created),
    updated: ms(job.updated),
    jobStartDate: ms(job.jobStartDate),
    jobListingStartDate: ms(job.jobListingStartDate),
    jobListingCompletionDate: ms(job.jobListingCompletionDate),
    jobScanningStartDate: ms(job.jobScanningStartDate),
    jobScanningCompletionDate: ms(job.jobScanningCompletionDate),
    jobCompletionDate: ms(job.jobCompletionDate),
    errors: job.errors.map((e) => Object.assign({}, e, { contextParams: Object.assign({}, e.contextParams) })),
  };
}

// ---- vulnerabilities ----------------------------------------------------------------------------

function softwareOf(v) {
  return { name: v.package, version: v.installedVersion, fixVersion: v.fixedVersion, packagePath: null, scanType: 'DYNAMIC' };
}

function resultTable(v) {
  return `#table cols="3"\nPackage Installed_Version Required_Version\n${v.package || '-'} ${v.installedVersion || '-'} ${v.fixedVersion || '-'}`;
}

// One vulnerability as /images/{sha}/vuln details[] and the detail's vulnerabilities[] show it.
function vulnItem(rec, v) {
  const base = CVSS3[v.severity];
  return {
    qid: v.qid,
    title: v.title,
    severity: v.severity,
    customerSeverity: v.severity,
    typeDetected: 'CONFIRMED',
    category: category(rec.operatingSystem),
    risk: v.severity * 10,
    cveids: v.cves.slice(),
    patchAvailable: v.fixedVersion !== null,
    // A fixed, plausible publication date derived from the QID (a number, as in the Qualys sample).
    published: 1700000000000 + (v.qid % 100000) * 86400,
    firstFound: ms(v.firstFound),
    lastFound: ms(v.lastFound),
    port: null,
    status: null,
    vulnerability: null,
    software: v.package ? [softwareOf(v)] : [],
    result: resultTable(v),
    discoveryType: ['AUTHENTICATED'],
    authType: ['UNIX_AUTH'],
    supportedBy: ['CS'],
    product: v.package ? [v.package] : [],
    vendor: [],
    cvssInfo: { baseScore: CVSS2[v.severity], temporalScore: temporal(CVSS2[v.severity]), accessVector: 'Network' },
    cvss3Info: { baseScore: base, temporalScore: temporal(base) },
    qdsScore: QDS[v.severity],
    threatIntel: {
      activeAttacks: null,
      zeroDay: null,
      publicExploit: null,
      easyExploit: null,
      exploitKit: null,
      malware: null,
      denialOfService: null,
      highLateralMovement: null,
      highDataLoss: null,
      noPatch: v.fixedVersion === null ? true : null,
    },
    layerSha: null,
    isExempted: false,
    scanType: ['DYNAMIC'],
    vendorData: null,
  };
}

// vulnSummary keys are severity numbers as strings; only severities present are listed.
function vulnSummary(vulns) {
  const confirmed = {};
  const patched = {};
  for (const v of vulns) {
    const k = String(v.severity);
    confirmed[k] = (confirmed[k] || 0) + 1;
    if (v.fixedVersion !== null) patched[k] = (patched[k] || 0) + 1;
  }
  return { confirmed, potential: {}, patchAvailability: { confirmed: patched, potential: {} } };
}

// ---- images -------------------------------------------------------------------------------------

function imageListItem(model, rec) {
  const reg = model.registryFor(rec);
  const scanned = rec.state === 'scanned';
  return {
    created: ms(rec.created),
    updated: ms(rec.updated),
    lastScanned: ms(rec.lastScanned),
    lastUsedDate: null,
    firstFound: ms(rec.firstFound),
    sha: rec.sha,
    repo: rec.repos.map((r) => ({ registry: r.registry, tag: r.tag, repository: r.repository })),
    repoDigests: rec.digests.map((d) => ({ registry: d.registry, digest: d.digest, repository: d.repository })),
    uuid: rec.uuid,
    size: rec.size,
    vulnerabilities: scanned ? severityCounts(rec.vulns) : null,
    imageId: rec.imageId,
    associatedContainersCount: 0,
    associatedHostsCount: 0,
    lastVmScanDate: null,
    registryUuid: reg ? reg.uuid : null,
    source: ['REGISTRY'],
    isDockerHubOfficial: false,
    scanType: null,
    scanTypes: rec.lastScanned !== null ? ['DYNAMIC'] : null,
    scanErrorCode: rec.scanErrorCode,
    scanStatus: rec.scanStatus,
    lastFoundOnHost: null,
  };
}

function defaultVulnOrder(a, b) {
  return b.severity - a.severity || a.qid - b.qid;
}

function softwares(rec) {
  if (rec.state !== 'scanned') return null;
  const byName = new Map();
  for (const v of rec.vulns) {
    if (!v.package) continue;
    const key = `${v.package}@${v.installedVersion}`;
    if (!byName.has(key)) byName.set(key, { sw: softwareOf(v), vulns: [] });
    byName.get(key).vulns.push(v);
  }
  return [...byName.values()].map(({ sw, vulns }) => Object.assign(sw, { vulnerabilities: severityCounts(vulns) }));
}

function imageDetail(model, rec) {
  const scanned = rec.state === 'scanned';
  const item = imageListItem(model, rec);
  const vulns = scanned ? rec.vulns.slice().sort(defaultVulnOrder).map((v) => vulnItem(rec, v)) : null;
  return Object.assign(item, {
    author: null,
    label: null,
    operatingSystem: rec.operatingSystem,
    customerUuid: model.customerUuid,
    dockerVersion: null,
    architecture: 'amd64',
    layers: [],
    layersCount: 0,
    host: [],
    sensorUuid: null,
    scanErrorMessage: rec.scanErrorMessage,
    softwares: softwares(rec),
    totalVulCount: scanned ? rec.vulns.length : null,
    vulnerabilities: vulns,
  });
}

// The bulk list shows detail records whose vulnerabilities carry only qid, result and software.
function imageBulkItem(model, rec) {
  const d = imageDetail(model, rec);
  if (d.vulnerabilities) d.vulnerabilities = d.vulnerabilities.map((v) => ({ qid: v.qid, result: v.result, software: v.software }));
  return d;
}

module.exports = {
  registryItem,
  registryDetail,
  connectorItem,
  scheduleItem,
  imageListItem,
  imageDetail,
  imageBulkItem,
  vulnItem,
  vulnSummary,
  severityCounts,
  defaultVulnOrder,
};
