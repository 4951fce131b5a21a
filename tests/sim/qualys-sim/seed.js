'use strict';
// The seed catalogue: what the simulated ECR registries contain, read from the shared seed format.

const fs = require('fs');
const path = require('path');

const DEFAULT_SEED_PATH = path.resolve(__dirname, '..', 'seed', 'default.json');
const QUALYS_STATES = ['pulled', 'scanned', 'failed'];

function ecrHost(account, region) {
  return `${account}.dkr.ecr.${region}.amazonaws.com`;
}

function bad(msg) {
  throw new Error(`seed: ${msg}`);
}

// Validates one vulnerability of a seed image and returns a normalised copy.
function normaliseVuln(v, where) {
  if (!v || typeof v !== 'object') bad(`${where} is not an object`);
  if (!Number.isInteger(v.qid) || v.qid <= 0) bad(`${where}.qid must be a positive integer`);
  if (!Number.isInteger(v.severity) || v.severity < 1 || v.severity > 5) bad(`${where}.severity must be 1..5`);
  return {
    qid: v.qid,
    severity: v.severity,
    title: typeof v.title === 'string' ? v.title : `QID ${v.qid}`,
    cves: Array.isArray(v.cves) ? v.cves.map(String) : [],
    package: typeof v.package === 'string' ? v.package : null,
    installedVersion: v.installed_version === undefined || v.installed_version === null ? null : String(v.installed_version),
    fixedVersion: v.fixed_version === undefined || v.fixed_version === null ? null : String(v.fixed_version),
  };
}

// Validates one seed image and returns the catalogue entry the model works with.
function normaliseImage(img, i) {
  const where = `images[${i}]`;
  if (!img || typeof img !== 'object') bad(`${where} is not an object`);
  if (!/^\d{12}$/.test(String(img.account))) bad(`${where}.account must be 12 digits`);
  if (!/^[a-z0-9-]+$/.test(String(img.region))) bad(`${where}.region is not a region name`);
  if (typeof img.repository !== 'string' || img.repository === '') bad(`${where}.repository is required`);
  if (!/^[0-9a-f]{64}$/.test(String(img.image_sha))) bad(`${where}.image_sha must be 64 lowercase hex`);
  if (!/^sha256:[0-9a-f]{64}$/.test(String(img.digest))) bad(`${where}.digest must be "sha256:" + 64 hex`);
  const tags = img.tags === undefined ? [] : img.tags;
  if (!Array.isArray(tags)) bad(`${where}.tags must be an array`);
  const vulns = img.vulns === undefined ? [] : img.vulns;
  if (!Array.isArray(vulns)) bad(`${where}.vulns must be an array`);
  let qualys = null;
  if (img.qualys !== undefined && img.qualys !== null) {
    if (!QUALYS_STATES.includes(img.qualys.state)) bad(`${where}.qualys.state must be one of ${QUALYS_STATES.join(', ')}`);
    qualys = { state: img.qualys.state, lastScanned: Number.isFinite(img.qualys.lastScanned) ? img.qualys.lastScanned : null };
  }
  return {
    account: String(img.account),
    region: String(img.region),
    host: ecrHost(img.account, img.region),
    repository: img.repository,
    tags: tags.map(String),
    digest: String(img.digest),
    sha: String(img.image_sha),
    size: Number.isFinite(img.size) ? img.size : 0,
    operatingSystem: typeof img.operating_system === 'string' ? img.operating_system : null,
    createdMs: Number.isFinite(img.pushed_at) ? img.pushed_at * 1000 : null,
    vulns: vulns.map((v, j) => normaliseVuln(v, `${where}.vulns[${j}]`)),
    qualys,
  };
}

// Turns a seed document into catalogue entries; throws with a precise message on bad input.
function parseSeed(doc) {
  if (!doc || typeof doc !== 'object') bad('the document must be a JSON object');
  const images = doc.images === undefined ? [] : doc.images;
  if (!Array.isArray(images)) bad('images must be an array');
  return images.map(normaliseImage);
}

function loadSeedFile(file) {
  return JSON.parse(fs.readFileSync(file || DEFAULT_SEED_PATH, 'utf8'));
}

module.exports = { parseSeed, loadSeedFile, ecrHost, DEFAULT_SEED_PATH, QUALYS_STATES };
