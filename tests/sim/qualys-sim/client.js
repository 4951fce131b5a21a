'use strict';
// A minimal HTTP client for the simulator's contract tests and for other test harnesses: one fresh
// connection per request (so injected connection resets never poison a pool), raw status and headers.

const http = require('http');

// Sends one request. opts: { method, path, query: object, rawQuery: string, headers, json, form, token, text }.
// Resolves to { status, headers, text, body } where body is parsed JSON when the reply is JSON.
function request(baseUrl, opts) {
  const o = opts || {};
  const url = new URL(o.path || '/', baseUrl);
  if (o.query) for (const [k, v] of Object.entries(o.query)) url.searchParams.set(k, String(v));
  let search = url.search;
  if (o.rawQuery) search = `${search ? `${search}&` : '?'}${o.rawQuery}`;
  const headers = Object.assign({ Accept: 'application/json' }, o.headers);
  let payload = null;
  if (o.json !== undefined) {
    payload = Buffer.from(JSON.stringify(o.json));
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
  } else if (o.form !== undefined) {
    payload = Buffer.from(new URLSearchParams(o.form).toString());
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
  } else if (o.text !== undefined) {
    payload = Buffer.from(o.text);
  }
  if (payload) headers['Content-Length'] = payload.length;
  if (o.token) headers.Authorization = `Bearer ${o.token}`;
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname,
      port: url.port,
      method: o.method || 'GET',
      path: `${url.pathname}${search}`,
      headers,
      agent: false,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const textBody = Buffer.concat(chunks).toString('utf8');
        let body;
        if (/application\/json/.test(String(res.headers['content-type'])) && textBody.length) body = JSON.parse(textBody);
        resolve({ status: res.statusCode, headers: res.headers, text: textBody, body });
      });
    });
    req.on('error', reject);
    if (o.timeoutMs) req.setTimeout(o.timeoutMs, () => req.destroy(new Error('client timeout')));
    req.end(payload || undefined);
  });
}

// Polls fn until it returns a truthy value or the deadline passes; resolves to that value.
async function waitFor(fn, opts) {
  const o = opts || {};
  const deadline = Date.now() + (o.timeoutMs || 5000);
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${o.what || 'condition'}`);
    await new Promise((r) => setTimeout(r, o.intervalMs || 20));
  }
}

// A thin wrapper that logs in once and carries the bearer token.
class SimClient {
  constructor(baseUrl, creds) {
    this.baseUrl = baseUrl;
    this.creds = creds || { username: 'qfs-sim-user', password: 'qfs-sim-password' };
    this.token = null;
  }

  async login() {
    const r = await request(this.baseUrl, {
      method: 'POST',
      path: '/auth',
      form: { username: this.creds.username, password: this.creds.password, token: 'true' },
    });
    if (r.status !== 201) throw new Error(`login failed: ${r.status} ${r.text}`);
    this.token = r.text.trim();
    return this.token;
  }

  get(path, query, extra) {
    return request(this.baseUrl, Object.assign({ path: `/csapi/v1.3${path}`, query, token: this.token }, extra));
  }

  post(path, json, extra) {
    return request(this.baseUrl, Object.assign({ method: 'POST', path: `/csapi/v1.3${path}`, json, token: this.token }, extra));
  }

  // Admin calls return the parsed JSON body and throw on a non-200 answer.
  async admin(method, path, json) {
    const r = await request(this.baseUrl, { method, path: `/_sim/${path}`, json });
    if (r.status !== 200) throw new Error(`admin ${method} ${path}: ${r.status} ${r.text}`);
    return r.body;
  }
}

module.exports = { request, waitFor, SimClient };
