'use strict';
// The HTTP front of the sim: one server, one port. It routes by X-Amz-Target (JSON protocols) or
// by the Action parameter (query protocols), verifies SigV4, applies injected faults, calls the
// service, renders results and errors in the service's wire format, and logs every call.
// Paths under /_sim/ are the admin API (admin.js); GET /v2/credentials/<id> is the unsigned ECS
// container-credentials endpoint.

const http = require('http');
const { AwsError, toXml, xmlEscape, requestId } = require('./util');
const sigv4 = require('./sigv4');
const { Faults } = require('./faults');

// The target of nearly every AWS JSON-protocol call: parsed once, read only.
const ROOT_URL = new URL('/', 'http://localhost');

// Request bodies above this size are refused before parsing (SQS batches top out at 1 MiB of payload).
const MAX_BODY_BYTES = 16 * 1024 * 1024;

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new AwsError('RequestEntityTooLarge', 'Request body larger than ' + MAX_BODY_BYTES + ' bytes', { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// credentialScopeService reads the service name from the Authorization header's credential scope,
// which is how an unknown query Action is attributed to SNS or STS.
function credentialScopeService(req) {
  const m = /Credential=[^/,\s]+\/\d{8}\/[^/]+\/([^/]+)\//.exec(req.headers.authorization || '');
  return m ? m[1] : null;
}

class Router {
  constructor(sim) {
    this.sim = sim;
    this.byTarget = new Map();
    this.byAction = new Map();
    this.bySigningName = new Map();
    for (const svc of Object.values(sim.services)) {
      const meta = svc.constructor.meta;
      this.bySigningName.set(meta.signingName, svc);
      if (meta.protocol === 'json') this.byTarget.set(meta.targetPrefix, svc);
      else for (const op of meta.operations) this.byAction.set(op, svc);
    }
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        process.stderr.write('aws-sim: internal error: ' + (err && err.stack ? err.stack : err) + '\n');
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ __type: 'InternalFailure', message: 'aws-sim internal error' }));
        } else {
          res.destroy();
        }
      });
    });
    // Long polls last up to 20 s; keep Node's timeouts well above that.
    this.server.requestTimeout = 0;
    this.server.headersTimeout = 60000;
    this.server.keepAliveTimeout = 5000;
  }

  async handle(req, res) {
    const started = Date.now();
    const url = req.url === '/' ? ROOT_URL : new URL(req.url, 'http://localhost');
    let rawBody;
    try {
      rawBody = await readBody(req);
    } catch (e) {
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(e.status || 400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: e.message }));
      }
      return;
    }
    if (url.pathname.startsWith('/_sim/')) return this.sim.admin.handle(req, res, url, rawBody);
    if (req.method === 'GET' && /^\/v2\/credentials(\/[^/]*)?$/.test(url.pathname)) return this.containerCredentials(req, res, started);

    // Route: the JSON protocols name their operation in X-Amz-Target, the query protocols in Action.
    const target = req.headers['x-amz-target'];
    let svc = null;
    let op = null;
    let params = null;
    if (target) {
      const dot = target.lastIndexOf('.');
      svc = dot > 0 ? this.byTarget.get(target.slice(0, dot)) : null;
      op = dot > 0 ? target.slice(dot + 1) : target;
      if (!svc) {
        return this.sendJson(res, 400, 'application/x-amz-json-1.0', { __type: 'com.amazon.coral.service#UnknownOperationException' }, requestId());
      }
      const ops = svc.constructor.meta.operations;
      if (ops && ops.indexOf(op) < 0) {
        return this.sendJson(res, 400, svc.constructor.meta.contentType, { __type: 'com.amazon.coral.service#UnknownOperationException' }, requestId());
      }
    } else {
      params = this.queryParams(req, url, rawBody);
      op = params.Action;
      svc = op ? this.byAction.get(op) : null;
      if (!svc) {
        const scoped = this.bySigningName.get(credentialScopeService(req));
        const xmlns = scoped && scoped.constructor.meta.xmlns ? scoped.constructor.meta.xmlns : 'http://sns.amazonaws.com/doc/2010-03-31/';
        const message = op
          ? (scoped && scoped.constructor.meta.name === 'sqs'
            ? 'aws-sim serves SQS over the JSON protocol only (X-Amz-Target: AmazonSQS.' + op + ')'
            : 'Could not find operation ' + op + ' for version ' + (params.Version || 'NO_VERSION_SPECIFIED'))
          : 'aws-sim: a request needs an X-Amz-Target header or an Action parameter';
        return this.sendXmlError(res, xmlns, new AwsError(op ? 'InvalidAction' : 'MissingAction', message), requestId());
      }
    }
    const meta = svc.constructor.meta;
    const rid = requestId();
    const logEntry = { service: meta.name, operation: op, region: null, account: null, accessKeyId: null };
    const finish = (status, error, fault) => {
      logEntry.status = status;
      logEntry.error = error || null;
      logEntry.fault = fault || null;
      logEntry.durationMs = Date.now() - started;
      this.sim.calls.record(logEntry);
    };

    // Identity: every call must carry a valid SigV4 signature for this service.
    let auth;
    try {
      auth = sigv4.verify(req, rawBody, meta.signingName, (akid) => this.sim.identity.lookup(akid));
    } catch (e) {
      if (!(e instanceof sigv4.AuthFailure)) throw e;
      const err = sigv4.authError(meta.errorFamily, e);
      this.sendError(res, meta, err, rid);
      return finish(err.status, err.code);
    }
    logEntry.account = auth.cred.account;
    logEntry.accessKeyId = auth.cred.accessKeyId;
    logEntry.region = auth.region;

    // Injected faults act after authentication, where real throttling and outages show up.
    const fault = this.sim.faults.take(meta.name, op);
    if (fault) {
      if (fault.latency_ms) await new Promise((r) => setTimeout(r, fault.latency_ms));
      if (fault.reset) {
        req.socket.destroy();
        return finish(0, 'ConnectionReset', fault.id);
      }
      const err = Faults.errorFor(fault);
      if (err) {
        this.sendError(res, meta, err, rid);
        return finish(err.status, err.code, fault.id);
      }
    }

    let input;
    if (meta.protocol === 'json') {
      try {
        input = rawBody.length ? JSON.parse(rawBody.toString('utf8')) : {};
        if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new Error('not an object');
      } catch (e) {
        const err = new AwsError('SerializationException', 'Start of structure or map found where not expected.', {
          type: 'com.amazon.coral.service#SerializationException', queryCode: 'MalformedInput',
        });
        this.sendError(res, meta, err, rid);
        return finish(err.status, err.code);
      }
    } else {
      input = params;
    }

    let closed = false;
    const closeListeners = [];
    res.on('close', () => {
      if (res.writableEnded) return;
      closed = true;
      for (const fn of closeListeners) fn();
    });
    const call = {
      account: auth.cred.account,
      region: auth.region,
      cred: auth.cred,
      arn: auth.cred.arn,
      senderId: auth.cred.userId,
      req,
      rawBody,
      get closed() {
        return closed;
      },
      onClose(fn) {
        closeListeners.push(fn);
      },
    };

    let result;
    try {
      result = await svc.call(op, input, call);
    } catch (e) {
      if (!(e instanceof AwsError)) throw e;
      this.sendError(res, meta, e, rid);
      return finish(e.status, e.code);
    }
    if (closed) return finish(0, 'ClientClosed');
    if (result && result.raw) {
      const r = result.raw;
      res.writeHead(r.status, Object.assign({ 'content-length': r.body.length }, r.headers));
      res.end(r.body);
      let code = null;
      if (r.status >= 400) {
        try {
          code = String(JSON.parse(r.body.toString('utf8')).__type || '').split('#').pop() || null;
        } catch (e) {
          code = null;
        }
      }
      return finish(r.status, code);
    }
    if (meta.protocol === 'json') {
      this.sendJson(res, 200, meta.contentType, result, rid);
    } else {
      this.sendXml(res, 200, this.queryResult(meta, op, result, rid), rid);
    }
    return finish(200, null);
  }

  // queryParams merges the URL query and a form-encoded body (the body wins), as AWS reads them.
  queryParams(req, url, rawBody) {
    const out = {};
    for (const [k, v] of url.searchParams) out[k] = v;
    const ct = String(req.headers['content-type'] || '');
    if (rawBody.length && (ct.indexOf('x-www-form-urlencoded') >= 0 || ct === '')) {
      for (const [k, v] of new URLSearchParams(rawBody.toString('utf8'))) out[k] = v;
    }
    return out;
  }

  queryResult(meta, op, result, rid) {
    const inner = result === null || result === undefined ? '' : '<' + op + 'Result>' + toXml(result) + '</' + op + 'Result>';
    return '<' + op + 'Response xmlns="' + meta.xmlns + '">' + inner +
      '<ResponseMetadata><RequestId>' + rid + '</RequestId></ResponseMetadata></' + op + 'Response>\n';
  }

  sendJson(res, status, contentType, body, rid) {
    const text = body === null || body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, {
      'content-type': contentType,
      'content-length': Buffer.byteLength(text),
      'x-amzn-RequestId': rid,
    });
    res.end(text);
  }

  sendXml(res, status, xml, rid, extra) {
    res.writeHead(status, Object.assign({
      'content-type': 'text/xml',
      'content-length': Buffer.byteLength(xml),
      'x-amzn-RequestId': rid,
    }, extra || {}));
    res.end(xml);
  }

  sendXmlError(res, xmlns, err, rid) {
    const xml = '<ErrorResponse xmlns="' + xmlns + '">\n  <Error>\n    <Type>' + (err.sender ? 'Sender' : 'Receiver') + '</Type>\n    <Code>' +
      xmlEscape(err.code) + '</Code>\n    <Message>' + xmlEscape(err.message) + '</Message>\n  </Error>\n  <RequestId>' + rid +
      '</RequestId>\n</ErrorResponse>\n';
    this.sendXml(res, err.status, xml, rid);
  }

  // sendError renders an AwsError in the service's wire format.
  sendError(res, meta, err, rid) {
    if (res.destroyed) return;
    if (meta.protocol === 'query') return this.sendXmlError(res, meta.xmlns, err, rid);
    let type = err.type;
    if (!type) {
      if (meta.errorFamily === 'sqs-json') type = 'com.amazonaws.sqs#' + err.code;
      else type = (meta.errorPrefix || '') + err.code;
    }
    const body = { __type: type };
    body[meta.messageKey || 'message'] = err.message;
    const text = JSON.stringify(body);
    const headers = { 'content-type': meta.contentType, 'content-length': Buffer.byteLength(text), 'x-amzn-RequestId': rid };
    if (meta.errorFamily === 'sqs-json') headers['x-amzn-query-error'] = (err.queryCode || err.code) + ';' + (err.sender ? 'Sender' : 'Receiver');
    if (err.headers) Object.assign(headers, err.headers);
    res.writeHead(err.status, headers);
    res.end(text);
  }

  // containerCredentials answers like the ECS agent at 169.254.170.2: unsigned, JSON, the task
  // role's temporary credentials and their expiry.
  // Faults for service "credentials" apply here; an error is answered as {"code","message"}.
  async containerCredentials(req, res, started) {
    const entry = { service: 'credentials', operation: 'GetCredentials' };
    const finish = (status, error, fault) => this.sim.calls.record(Object.assign(entry, { status, error, fault, durationMs: Date.now() - started }));
    const fault = this.sim.faults.take('credentials', 'GetCredentials');
    if (fault) {
      if (fault.latency_ms) await new Promise((r) => setTimeout(r, fault.latency_ms));
      if (fault.reset) {
        req.socket.destroy();
        return finish(0, 'ConnectionReset', fault.id);
      }
      if (fault.type) {
        const text = JSON.stringify({ code: fault.type, message: fault.message });
        res.writeHead(fault.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return finish(fault.status, fault.type, fault.id);
      }
    }
    const body = JSON.stringify(this.sim.identity.containerCredentials());
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    const c = this.sim.identity.container;
    entry.account = c ? c.account : null;
    entry.accessKeyId = c ? c.accessKeyId : null;
    return finish(200, null, fault ? fault.id : null);
  }
}

module.exports = { Router };
