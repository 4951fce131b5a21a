'use strict';
// HTTP response helpers: the Qualys error body, JSON and empty replies, and bounded body reading.

// Reason words follow the Spring HttpStatus names that Qualys puts after the code in errorCode.
const REASONS = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'TOO_MANY_REQUESTS',
  500: 'INTERNAL_SERVER_ERROR',
  501: 'NOT_IMPLEMENTED',
  502: 'BAD_GATEWAY',
  503: 'SERVICE_UNAVAILABLE',
  504: 'GATEWAY_TIMEOUT',
};

const JSON_TYPE = 'application/json;charset=UTF-8';
const MAX_BODY_BYTES = 8 * 1024 * 1024;

// An ApiError carries an HTTP status and a message; handlers throw it and the server renders it.
class ApiError extends Error {
  constructor(status, message, headers) {
    super(message);
    this.status = status;
    this.headers = headers || {};
  }
}

function reasonFor(status) {
  return REASONS[status] || 'ERROR';
}

// The error object every CS endpoint uses: errorCode "<code> <REASON>", a message and epoch-ms timestamp.
function errorBody(status, message) {
  return { errorCode: `${status} ${reasonFor(status)}`, message: String(message), timestamp: Date.now() };
}

// A handler result is { status, body, headers, raw }; these helpers build the common ones.
function json(status, body, headers) {
  return { status, body, headers: headers || {} };
}

function empty(status, headers) {
  return { status, body: undefined, headers: headers || {} };
}

function text(status, str, contentType, headers) {
  return { status, raw: str, contentType: contentType || 'text/plain;charset=UTF-8', headers: headers || {} };
}

function error(status, message, headers) {
  return json(status, errorBody(status, message), headers);
}

// Writes a handler result to the socket. A raw result is sent as is; a body is JSON-encoded.
function send(res, result) {
  const headers = Object.assign({}, result.headers);
  let payload = null;
  if (result.raw !== undefined) {
    payload = Buffer.from(result.raw, 'utf8');
    headers['Content-Type'] = result.contentType;
  } else if (result.body !== undefined && result.status !== 204) {
    payload = Buffer.from(typeof result.rawJson === 'string' ? result.rawJson : JSON.stringify(result.body), 'utf8');
    headers['Content-Type'] = JSON_TYPE;
  }
  if (payload) headers['Content-Length'] = payload.length;
  else if (result.status !== 204) headers['Content-Length'] = 0;
  res.writeHead(result.status, headers);
  res.end(payload || undefined);
}

// Reads a request body into a Buffer, refusing bodies above the cap with a 413.
function readBody(req, limit) {
  const cap = limit || MAX_BODY_BYTES;
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk) => {
      if (failed) return;
      size += chunk.length;
      if (size > cap) {
        failed = true;
        reject(new ApiError(413, `Request body larger than ${cap} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => { if (!failed) resolve(Buffer.concat(chunks)); });
    req.on('error', (err) => { if (!failed) { failed = true; reject(err); } });
  });
}

module.exports = { ApiError, errorBody, reasonFor, json, empty, text, error, send, readBody, JSON_TYPE };
