'use strict';
// The Qualys endpoints: POST /auth and the /csapi/v1.3 registry and image routes.

const { ApiError, json, empty, text, error } = require('./respond');
const qql = require('./qql');
const views = require('./views');

const API = '/csapi/v1.3';
const MAX_LIST_WINDOW = 10000;

// ---- parameter helpers --------------------------------------------------------------------------

// Reads an integer query parameter; a non-integer is a 400 as Spring's conversion would make it.
function intParam(query, name, dflt, min, max) {
  const raw = query.get(name);
  if (raw === null || raw === '') return dflt;
  if (!/^-?\d+$/.test(raw)) {
    throw new ApiError(400, `Failed to convert value of type 'java.lang.String' to required type 'int'; For input string: "${raw}"`);
  }
  const n = Number(raw);
  if (n < min || n > max) throw new ApiError(400, `${name} must be between ${min} and ${max === Infinity ? 'any' : max}`);
  return n;
}

function compileFilter(raw, fields) {
  try {
    return qql.compile(raw, fields);
  } catch (e) {
    if (e instanceof qql.QqlError) throw new ApiError(400, e.message);
    throw e;
  }
}

function compileSort(raw, sortable, fallback) {
  try {
    return qql.compileSort(raw, sortable, fallback);
  } catch (e) {
    if (e instanceof qql.QqlError) throw new ApiError(400, e.message);
    throw e;
  }
}

function parseJsonBody(ctx) {
  const ct = String(ctx.req.headers['content-type'] || '').toLowerCase();
  if (!ct.startsWith('application/json')) {
    throw new ApiError(415, `Content type '${ct || 'none'}' not supported; use application/json`);
  }
  if (!ctx.body || ctx.body.length === 0) throw new ApiError(400, 'Required request body is missing');
  try {
    return JSON.parse(ctx.body.toString('utf8'));
  } catch (e) {
    throw new ApiError(400, `JSON parse error: ${e.message}`);
  }
}

function byShaTiebreak(a, b) {
  return a.sha < b.sha ? -1 : a.sha > b.sha ? 1 : 0;
}

// ---- QQL token tables ---------------------------------------------------------------------------

function imageFields(model) {
  const reg = (rec) => model.registryFor(rec);
  return {
    sha: { type: 'text', get: (r) => r.sha },
    imageId: { type: 'text', get: (r) => r.imageId },
    uuid: { type: 'text', get: (r) => r.uuid },
    'repo.repository': { type: 'text', get: (r) => r.repos.map((x) => x.repository) },
    'repo.tag': { type: 'text', get: (r) => r.repos.map((x) => x.tag) },
    'repo.registry': { type: 'text', get: (r) => r.repos.map((x) => x.registry) },
    registryUri: { type: 'text', get: (r) => (reg(r) ? reg(r).uri : null) },
    registryUuid: { type: 'text', get: (r) => (reg(r) ? reg(r).uuid : null) },
    lastScanned: { type: 'time', get: (r) => r.lastScanned },
    updated: { type: 'time', get: (r) => r.updated },
    created: { type: 'time', get: (r) => r.created },
    firstFound: { type: 'time', get: (r) => r.firstFound },
    imagesInUse: { type: 'time', get: () => null },
    scanStatus: { type: 'text', get: (r) => r.scanStatus },
    operatingSystem: { type: 'text', get: (r) => r.operatingSystem },
    'vulnerabilities.severity': { type: 'number', get: (r) => (r.state === 'scanned' ? r.vulns.map((v) => v.severity) : null) },
    'vulnerabilities.qid': { type: 'number', get: (r) => (r.state === 'scanned' ? r.vulns.map((v) => v.qid) : null) },
  };
}

const IMAGE_SORTS = {
  created: (r) => r.created,
  updated: (r) => r.updated,
  lastScanned: (r) => r.lastScanned,
  size: (r) => r.size,
  sha: (r) => r.sha,
};

const REGISTRY_FIELDS = {
  registryUri: { type: 'text', get: (r) => r.uri },
  registryUuid: { type: 'text', get: (r) => r.uuid },
  registryType: { type: 'text', get: (r) => r.type },
  registryName: { type: 'text', get: (r) => r.name },
  awsAccountId: { type: 'text', get: (r) => r.aws.accountId },
  awsRegion: { type: 'text', get: (r) => r.aws.region },
  created: { type: 'time', get: (r) => r.created },
  updated: { type: 'time', get: (r) => r.updated },
};

const REGISTRY_SORTS = {
  created: (r) => r.created,
  updated: (r) => r.updated,
  registryUri: (r) => r.uri,
};

const VULN_FIELDS = {
  qid: { type: 'number', get: (v) => v.qid },
  severity: { type: 'number', get: (v) => v.severity },
  'vulnerabilities.qid': { type: 'number', get: (v) => v.qid },
  'vulnerabilities.severity': { type: 'number', get: (v) => v.severity },
  'vulnerabilities.title': { type: 'text', get: (v) => v.title },
  title: { type: 'text', get: (v) => v.title },
  cveids: { type: 'text', get: (v) => v.cves },
  typeDetected: { type: 'text', get: () => 'CONFIRMED' },
  patchAvailable: { type: 'bool', get: (v) => v.fixedVersion !== null },
  'software.name': { type: 'text', get: (v) => v.package },
};

const VULN_SORTS = {
  qid: (v) => v.qid,
  severity: (v) => v.severity,
  'vulnerabilities.qid': (v) => v.qid,
  'vulnerabilities.severity': (v) => v.severity,
  firstFound: (v) => v.firstFound,
};

// ---- paging -------------------------------------------------------------------------------------

// A pivot list: { data, count } with the page, or 204 when the page is empty.
function pagedList(items, pageNumber, pageSize, render) {
  const from = (pageNumber - 1) * pageSize;
  const page = items.slice(from, from + pageSize);
  if (page.length === 0) return empty(204);
  return json(200, { data: page.map(render), count: items.length });
}

// /registry and /registry/{id}/schedule use pageNo in the swagger; pageNumber is accepted too.
function registryPaging(query) {
  const name = query.get('pageNo') !== null ? 'pageNo' : 'pageNumber';
  return {
    pageNumber: intParam(query, name, 1, 1, Infinity),
    pageSize: intParam(query, 'pageSize', 50, 1, 1000),
  };
}

// ---- handlers -----------------------------------------------------------------------------------

// POST /auth: form body username, password, token=true; 201 with the raw JWT as text.
function postAuth(ctx) {
  const ct = String(ctx.req.headers['content-type'] || '').toLowerCase();
  const form = ct === '' || ct.startsWith('application/x-www-form-urlencoded')
    ? new URLSearchParams(ctx.body.toString('utf8'))
    : new URLSearchParams();
  const cfg = ctx.sim.config;
  if (form.get('token') !== 'true') return error(400, 'token=true is required in the form body');
  const username = form.get('username');
  const password = form.get('password');
  if (!username || !password || username !== cfg.username || password !== cfg.password) {
    return error(401, 'Authentication failed: invalid username or password');
  }
  return text(201, ctx.sim.tokens.issue(username, ctx.now), 'text/plain;charset=UTF-8');
}

function getAwsBase(ctx) {
  const base = ctx.sim.model.awsBase;
  // externalId is written as a raw JSON number token (exact even beyond 2^53) unless the knob asks for a string.
  const ext = base.asString ? JSON.stringify(base.externalId) : base.externalId;
  const result = json(200, { accountId: base.accountId, externalId: base.asString ? base.externalId : Number(base.externalId) });
  result.rawJson = `{"accountId":${JSON.stringify(base.accountId)},"externalId":${ext}}`;
  return result;
}

function getConnectors(ctx) {
  return json(200, ctx.sim.model.listConnectors(ctx.params.accountId).map(views.connectorItem));
}

function postConnector(ctx) {
  const body = parseJsonBody(ctx);
  // Java reads a numeric externalId as an exact long; take the digits from the raw text to match that.
  const raw = /"externalId"\s*:\s*(\d+)/.exec(ctx.body.toString('utf8'));
  if (raw && body && typeof body === 'object') body.externalId = raw[1];
  ctx.sim.model.createConnector(body, ctx.now);
  return empty(ctx.sim.model.connectorCreateStatus);
}

function getRegistries(ctx) {
  const { pageNumber, pageSize } = registryPaging(ctx.query);
  const filter = compileFilter(ctx.query.get('filter'), REGISTRY_FIELDS);
  const sort = compileSort(ctx.query.get('sort'), REGISTRY_SORTS, 'created:desc');
  const list = [...ctx.sim.model.registries.values()].filter((r) => filter(r, ctx.now));
  qql.applySort(list, sort, (a, b) => (a.uuid < b.uuid ? -1 : 1));
  return pagedList(list, pageNumber, pageSize, (r) => views.registryItem(ctx.sim.model, r));
}

function postRegistry(ctx) {
  const reg = ctx.sim.model.createRegistry(parseJsonBody(ctx), ctx.now);
  return json(200, { registryUuid: reg.uuid });
}

function getRegistry(ctx) {
  const reg = ctx.sim.model.getRegistry(ctx.params.id);
  if (!reg) return error(404, `Registry ${ctx.params.id} not found`);
  return json(200, views.registryDetail(ctx.sim.model, reg));
}

function postSchedule(ctx) {
  const model = ctx.sim.model;
  if (!model.getRegistry(ctx.params.id)) return error(404, `Registry ${ctx.params.id} not found`);
  const job = model.createSchedule(ctx.params.id, parseJsonBody(ctx), ctx.now);
  return json(200, { scheduleUuid: job.uuid });
}

function getSchedules(ctx) {
  const model = ctx.sim.model;
  if (!model.getRegistry(ctx.params.id)) return error(404, `Registry ${ctx.params.id} not found`);
  const { pageNumber, pageSize } = registryPaging(ctx.query);
  const list = model.listSchedules(ctx.params.id).sort((a, b) => b.created - a.created);
  return pagedList(list, pageNumber, pageSize, views.scheduleItem);
}

// GET /images: QQL filter, pageNumber (from 1) and pageSize (1..1000), at most 10,000 records reachable.
function getImages(ctx) {
  const model = ctx.sim.model;
  const pageNumber = intParam(ctx.query, 'pageNumber', 1, 1, Infinity);
  const pageSize = intParam(ctx.query, 'pageSize', 50, 1, 1000);
  const filter = compileFilter(ctx.query.get('filter'), imageFields(model));
  const sort = compileSort(ctx.query.get('sort'), IMAGE_SORTS, 'created:desc');
  if ((pageNumber - 1) * pageSize + pageSize > MAX_LIST_WINDOW) {
    return error(400, `Result window is too large: pageNumber * pageSize must be at most ${MAX_LIST_WINDOW}; use /csapi/v1.3/images/list for more records`);
  }
  const list = [...model.images.values()].filter((r) => filter(r, ctx.now));
  qql.applySort(list, sort, byShaTiebreak);
  return pagedList(list, pageNumber, pageSize, (r) => views.imageListItem(model, r));
}

function encodeCursor(c) {
  return Buffer.from(JSON.stringify(c)).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

function decodeCursor(s) {
  try {
    const c = JSON.parse(Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8'));
    if (!c || typeof c.o !== 'number') throw new Error('bad cursor');
    return c;
  } catch (e) {
    throw new ApiError(400, 'Invalid paginationQuery');
  }
}

// GET /images/list: the bulk API, cursor-paged through a Link header (limit 1..250).
function getImagesBulk(ctx) {
  const model = ctx.sim.model;
  const limit = intParam(ctx.query, 'limit', 50, 1, 250);
  const pq = ctx.query.get('paginationQuery');
  const cursor = pq ? decodeCursor(pq) : { f: ctx.query.get('filter') || '', o: 0 };
  const filter = compileFilter(cursor.f, imageFields(model));
  const list = [...model.images.values()].filter((r) => filter(r, ctx.now));
  list.sort((a, b) => a.updated - b.updated || byShaTiebreak(a, b));
  const page = list.slice(cursor.o, cursor.o + limit);
  const headers = {};
  if (cursor.o + limit < list.length) {
    const next = encodeCursor({ f: cursor.f, o: cursor.o + limit });
    headers.Link = `<${ctx.baseUrl}${API}/images/list?limit=${limit}&paginationQuery=${encodeURIComponent(next)}>;rel=next`;
  }
  return json(200, { data: page.map((r) => views.imageBulkItem(model, r)) }, headers);
}

const SCAN_DETAILS = ['malware', 'secrets', 'compliance'];

function findImageOr404(ctx) {
  const rec = ctx.sim.model.findImage(ctx.params.sha);
  if (!rec) throw new ApiError(404, `Image ${ctx.params.sha} not found`);
  return rec;
}

function getImage(ctx) {
  const raw = ctx.query.get('scanDetails');
  const wanted = raw ? raw.split(',').map((s) => s.trim()).filter(Boolean) : [];
  for (const w of wanted) if (!SCAN_DETAILS.includes(w)) return error(400, `scanDetails must be a comma list of ${SCAN_DETAILS.join(', ')}`);
  const rec = findImageOr404(ctx);
  const body = views.imageDetail(ctx.sim.model, rec);
  for (const w of wanted) body[w] = null;
  return json(200, body);
}

// GET /images/{sha}/vuln: { details, vulnSummary }, not paged (pageNumber/pageSize are ignored).
function getImageVulns(ctx) {
  const type = ctx.query.get('type') || 'ALL';
  if (!['SUMMARY', 'DETAILS', 'ALL'].includes(type)) return error(400, 'type must be one of SUMMARY, DETAILS, ALL');
  const filter = compileFilter(ctx.query.get('filter'), VULN_FIELDS);
  const sortRaw = ctx.query.get('sort');
  const sort = sortRaw ? compileSort(sortRaw, VULN_SORTS) : null;
  const rec = findImageOr404(ctx);
  if (rec.state !== 'scanned') return json(200, { details: null, vulnSummary: null });
  const vulns = rec.vulns.filter((v) => filter(v, ctx.now));
  if (sort) qql.applySort(vulns, sort, (a, b) => a.qid - b.qid);
  else vulns.sort(views.defaultVulnOrder);
  return json(200, {
    details: type === 'SUMMARY' ? null : vulns.map((v) => views.vulnItem(rec, v)),
    vulnSummary: type === 'DETAILS' ? null : views.vulnSummary(vulns),
  });
}

function getImageVulnCount(ctx) {
  const rec = findImageOr404(ctx);
  return json(200, views.severityCounts(rec.state === 'scanned' ? rec.vulns : []));
}

// ---- route table --------------------------------------------------------------------------------

const ROUTES = [
  { name: 'auth', method: 'POST', path: '/auth', handler: postAuth, public: true },
  { name: 'aws-base', method: 'GET', path: `${API}/registry/aws-base`, handler: getAwsBase },
  { name: 'aws-connectors', method: 'GET', path: `${API}/registry/aws/connectors`, handler: getConnectors },
  { name: 'aws-connectors', method: 'GET', path: `${API}/registry/aws/connectors/:accountId`, handler: getConnectors },
  { name: 'aws-connector-create', method: 'POST', path: `${API}/registry/aws/connector`, handler: postConnector },
  { name: 'registry-list', method: 'GET', path: `${API}/registry`, handler: getRegistries },
  { name: 'registry-create', method: 'POST', path: `${API}/registry`, handler: postRegistry },
  { name: 'registry-get', method: 'GET', path: `${API}/registry/:id`, handler: getRegistry },
  { name: 'schedule-create', method: 'POST', path: `${API}/registry/:id/schedule`, handler: postSchedule },
  { name: 'schedule-list', method: 'GET', path: `${API}/registry/:id/schedule`, handler: getSchedules },
  { name: 'images', method: 'GET', path: `${API}/images`, handler: getImages },
  { name: 'images-bulk', method: 'GET', path: `${API}/images/list`, handler: getImagesBulk },
  { name: 'image-detail', method: 'GET', path: `${API}/images/:sha`, handler: getImage },
  { name: 'image-vuln', method: 'GET', path: `${API}/images/:sha/vuln`, handler: getImageVulns },
  { name: 'image-vuln-count', method: 'GET', path: `${API}/images/:sha/vuln/count`, handler: getImageVulnCount },
].map((r) => {
  const keys = [];
  const source = r.path.replace(/[.]/g, '\\.').replace(/:([A-Za-z]+)/g, (m, k) => { keys.push(k); return '([^/]+)'; });
  return Object.assign({ re: new RegExp(`^${source}$`), keys }, r);
});

const ENDPOINT_NAMES = [...new Set(ROUTES.map((r) => r.name))];

// Finds the route for a request. Literal routes win over parameterised ones because they come first
// in the table. Returns { route, params }, { methodNotAllowed: true, name } or null.
function match(method, path) {
  let samePath = null;
  for (const r of ROUTES) {
    const m = r.re.exec(path);
    if (!m) continue;
    if (r.method !== method) {
      if (!samePath) samePath = r;
      continue;
    }
    const params = {};
    try {
      r.keys.forEach((k, i) => { params[k] = decodeURIComponent(m[i + 1]); });
    } catch (e) {
      return null;
    }
    return { route: r, params };
  }
  return samePath ? { methodNotAllowed: true, name: samePath.name } : null;
}

module.exports = { match, ROUTES, ENDPOINT_NAMES, API };
