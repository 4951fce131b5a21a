'use strict';
// Small helpers shared by the aws-sim modules: ids, XML, time formats and the AwsError type.

const crypto = require('crypto');

// An AwsError is what every service handler throws to answer with an AWS error shape.
// `code` is the error name (for JSON services the text after '#' in __type, for query services
// the <Code>). `opts.status` is the HTTP status, `opts.type` overrides the JSON __type, and
// `opts.queryCode` is the legacy code SQS puts in x-amzn-query-error.
class AwsError extends Error {
  constructor(code, message, opts) {
    super(message);
    const o = opts || {};
    this.code = code;
    this.status = o.status || 400;
    this.type = o.type || null;
    this.queryCode = o.queryCode || null;
    this.sender = o.sender !== undefined ? o.sender : this.status < 500;
    this.headers = o.headers || null;
  }
}

const UPPER_ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

// randomChars returns n characters from the given alphabet, using crypto randomness.
function randomChars(n, alphabet) {
  const a = alphabet || UPPER_ALNUM;
  const bytes = crypto.randomBytes(n);
  let s = '';
  for (let i = 0; i < n; i++) s += a[bytes[i] % a.length];
  return s;
}

// stableChars derives n upper-case alphanumerics from a string, for ids that must not change
// between runs (IAM user and role ids).
function stableChars(seed, n) {
  const h = crypto.createHash('sha256').update(String(seed)).digest();
  let s = '';
  for (let i = 0; i < n; i++) s += UPPER_ALNUM[h[i] % UPPER_ALNUM.length];
  return s;
}

function uuid() {
  return crypto.randomUUID();
}

function md5Hex(data) {
  return crypto.createHash('md5').update(data).digest('hex');
}

function sha256Hex(data) {
  return crypto.createHash('sha256').update(data).digest('hex');
}

// xmlEscape escapes text for use in XML element content (quotes need no escaping there, and AWS
// leaves them as they are in its messages).
function xmlEscape(s) {
  return String(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\r/g, '&#xD;');
}

// toXml renders a plain object as nested XML elements. Arrays become repeated <member> children,
// which is how the query protocols serialise lists, except an array under the key "entry", which
// becomes repeated <entry> elements as query-protocol maps are serialised.
function toXml(value) {
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) return value.map((v) => '<member>' + toXml(v) + '</member>').join('');
  if (typeof value === 'object') {
    return Object.keys(value)
      .filter((k) => value[k] !== undefined && value[k] !== null)
      .map((k) => {
        if (k === 'entry' && Array.isArray(value[k])) return value[k].map((v) => '<entry>' + toXml(v) + '</entry>').join('');
        return '<' + k + '>' + toXml(value[k]) + '</' + k + '>';
      })
      .join('');
  }
  return xmlEscape(value);
}

// isoSeconds formats a time (ms since epoch) as ISO-8601 UTC with second precision, e.g. 2026-05-01T10:00:00Z.
function isoSeconds(ms) {
  return new Date(ms === undefined ? Date.now() : ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// amzDate formats a time as the SigV4 basic format, e.g. 20260501T100000Z.
function amzDate(ms) {
  return isoSeconds(ms).replace(/[-:]/g, '');
}

// parseAmzDate parses 20260501T100000Z into ms since epoch, or returns NaN.
function parseAmzDate(s) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
  if (!m) return NaN;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
}

// parseArn splits an ARN into its six fields, or returns null when it is not one.
function parseArn(arn) {
  if (typeof arn !== 'string') return null;
  const parts = arn.split(':');
  if (parts.length < 6 || parts[0] !== 'arn') return null;
  return {
    partition: parts[1],
    service: parts[2],
    region: parts[3],
    account: parts[4],
    resource: parts.slice(5).join(':'),
  };
}

function requestId() {
  return uuid();
}

// deepClone copies JSON-compatible data.
function deepClone(v) {
  return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

module.exports = {
  AwsError,
  randomChars,
  stableChars,
  uuid,
  md5Hex,
  sha256Hex,
  xmlEscape,
  toXml,
  isoSeconds,
  amzDate,
  parseAmzDate,
  parseArn,
  requestId,
  deepClone,
};
