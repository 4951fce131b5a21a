'use strict';
// SigV4 verification of incoming requests, built on aws4 as in aws-wire.md §2.10, and the
// AWS error each kind of authentication failure produces in each protocol family.

const crypto = require('crypto');
const aws4 = require('aws4');
const { AwsError, parseAmzDate, amzDate, sha256Hex } = require('./util');

// AWS accepts a signature whose date is within 15 minutes of its own clock, both ways.
const SKEW_MS = 15 * 60 * 1000;

// The kinds of authentication failure, in the order AWS checks them. AWS checks the date and the
// credential scope before it looks up the key, and the signature before the session token, which is
// the order the DynamoDB error texts recorded in dynalite's index.js comments show.
const KIND = {
  MISSING: 'missing',
  INCOMPLETE: 'incomplete',
  EXPIRED_SIGNATURE: 'expired-signature',
  SCOPE: 'scope',
  UNKNOWN_KEY: 'unknown-key',
  MISMATCH: 'mismatch',
  BAD_TOKEN: 'bad-token',
  EXPIRED_TOKEN: 'expired-token',
};

class AuthFailure extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

// headerMap collects the request's headers from rawHeaders, lower-casing names and joining repeated
// headers with ',' as the SigV4 canonical form requires.
function headerMap(req) {
  const out = Object.create(null);
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    out[name] = name in out ? out[name] + ',' + raw[i + 1] : raw[i + 1];
  }
  return out;
}

// parseAuthorization splits "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." into parts.
function parseAuthorization(value) {
  const trimmed = value.trim();
  const sp = trimmed.indexOf(' ');
  const algorithm = sp < 0 ? trimmed : trimmed.slice(0, sp);
  const params = {};
  const rest = sp < 0 ? '' : trimmed.slice(sp + 1);
  for (const piece of rest.split(',')) {
    const p = piece.trim();
    if (!p) continue;
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    params[p.slice(0, eq).trim()] = p.slice(eq + 1).trim();
  }
  return { algorithm, params };
}

// dateFromHeaders returns the request time in SigV4 basic format from X-Amz-Date, or from an
// RFC 1123 Date header when X-Amz-Date is absent (AWS accepts either).
function dateFromHeaders(headers) {
  if (headers['x-amz-date'] !== undefined) return { name: 'x-amz-date', value: headers['x-amz-date'] };
  if (headers.date !== undefined) {
    const ms = Date.parse(headers.date);
    return { name: 'date', value: Number.isFinite(ms) ? amzDate(ms) : headers.date };
  }
  return null;
}

// verify checks the request's SigV4 Authorization header. `expectedService` is the signing name of
// the service the request is routed to. `lookup(akid)` returns the stored credential or null.
// It returns {cred, region, service, signedHeaders} or throws an AuthFailure.
function verify(req, rawBody, expectedService, lookup, nowMs) {
  const now = nowMs === undefined ? Date.now() : nowMs;
  const headers = headerMap(req);
  const auth = headers.authorization;
  if (auth === undefined || auth.trim().slice(0, 5) !== 'AWS4-') {
    throw new AuthFailure(KIND.MISSING, 'Request is missing Authentication Token');
  }
  const { algorithm, params } = parseAuthorization(auth);

  let msg = '';
  for (const p of ['Credential', 'Signature', 'SignedHeaders']) {
    if (!params[p]) msg += "Authorization header requires '" + p + "' parameter. ";
  }
  const date = dateFromHeaders(headers);
  if (!date) msg += "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ";
  if (msg) throw new AuthFailure(KIND.INCOMPLETE, msg + 'Authorization=' + auth);

  const reqMs = parseAmzDate(date.value);
  if (!Number.isFinite(reqMs)) {
    throw new AuthFailure(KIND.INCOMPLETE, "Date must be in ISO-8601 'basic format'. Got '" + date.value + "'. See http://en.wikipedia.org/wiki/ISO_8601");
  }
  if (reqMs < now - SKEW_MS) {
    throw new AuthFailure(KIND.EXPIRED_SIGNATURE, 'Signature expired: ' + date.value + ' is now earlier than ' +
      amzDate(now - SKEW_MS) + ' (' + amzDate(now) + ' - 15 min.)');
  }
  if (reqMs > now + SKEW_MS) {
    throw new AuthFailure(KIND.EXPIRED_SIGNATURE, 'Signature not yet current: ' + date.value + ' is still later than ' +
      amzDate(now + SKEW_MS) + ' (' + amzDate(now) + ' + 15 min.)');
  }

  const signedNames = params.SignedHeaders.split(';').map((s) => s.trim().toLowerCase()).filter(Boolean);
  if (signedNames.indexOf('host') < 0) {
    throw new AuthFailure(KIND.SCOPE, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
  }
  if (algorithm !== 'AWS4-HMAC-SHA256') {
    throw new AuthFailure(KIND.INCOMPLETE, "Unsupported AWS 'algorithm': '" + algorithm + "' (only AWS4-HMAC-SHA256 for now). ");
  }

  const scope = params.Credential.replace(/\/+$/, '').split('/');
  if (scope.length !== 5) {
    throw new AuthFailure(KIND.INCOMPLETE, 'Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got \'' + params.Credential + "'");
  }
  const [akid, scopeDate, region, service, term] = scope;
  msg = '';
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) msg += "Credential should be scoped to a valid region, not '" + region + "'. ";
  if (service !== expectedService) msg += "Credential should be scoped to correct service: '" + expectedService + "'. ";
  if (term !== 'aws4_request') msg += "Credential should be scoped with a valid terminator: 'aws4_request', not '" + term + "'. ";
  if (scopeDate !== date.value.slice(0, 8)) {
    msg += "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '" + scopeDate + "' != '" +
      date.value.slice(0, 8) + "', from '" + date.value + "'.";
  }
  if (msg) throw new AuthFailure(KIND.SCOPE, msg.trim());

  // Step 2 of the recipe: only the signed headers, with the values received; a signed header
  // that was not sent is refused, as AppSync does, to catch curl 7.88's removal-header bug.
  const signed = {};
  const include = {};
  for (const name of signedNames) {
    if (!(name in headers)) {
      throw new AuthFailure(KIND.INCOMPLETE, "'" + name + "' is named as a SignedHeader, but it does not exist in the HTTP request headers");
    }
    signed[name] = headers[name];
    include[name] = true;
  }

  const cred = lookup(akid);
  if (!cred) throw new AuthFailure(KIND.UNKNOWN_KEY, 'The security token included in the request is invalid.');

  // Steps 3 and 4: let aws4 compute the signature over exactly those headers at the request's date.
  const signer = new aws4.RequestSigner({
    method: req.method,
    path: req.url,
    body: rawBody,
    service,
    region,
    headers: signed,
    doNotModifyHeaders: true,
    extraHeadersToInclude: include,
  }, { accessKeyId: akid, secretAccessKey: cred.secretAccessKey });
  signer.datetime = date.value;
  const expected = signer.signature();
  const given = String(params.Signature);
  const ok = given.length === expected.length &&
    crypto.timingSafeEqual(Buffer.from(given), Buffer.from(expected));
  const contentSha = signed['x-amz-content-sha256'];
  const bodyMismatch = contentSha !== undefined && contentSha !== 'UNSIGNED-PAYLOAD' && contentSha !== sha256Hex(rawBody);
  if (!ok || bodyMismatch) {
    // Real AWS appends the canonical request and the string to sign, which is what makes a
    // signing bug findable; the sim does the same.
    throw new AuthFailure(KIND.MISMATCH,
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.' +
      "\n\nThe Canonical String for this request should have been\n'" + signer.canonicalString() +
      "'\n\nThe String-to-Sign should have been\n'" + signer.stringToSign() + "'\n");
  }

  // Session tokens: temporary keys need theirs, signed; long-term keys must not carry one.
  const token = headers['x-amz-security-token'];
  if (cred.kind === 'user') {
    if (token !== undefined) throw new AuthFailure(KIND.BAD_TOKEN, 'The security token included in the request is invalid.');
  } else {
    if (token === undefined || token !== cred.sessionToken) {
      throw new AuthFailure(KIND.BAD_TOKEN, 'The security token included in the request is invalid.');
    }
    if (!include['x-amz-security-token']) {
      // A strictness of the sim: SDKs, aws4 and curl 7.88 all sign the token, so an unsigned one is a client bug.
      throw new AuthFailure(KIND.INCOMPLETE, "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization (aws-sim requires the session token to be signed).");
    }
    if (cred.expiration <= now) {
      throw new AuthFailure(KIND.EXPIRED_TOKEN, 'The security token included in the request is expired');
    }
  }
  return { cred, region, service, signedHeaders: signedNames };
}

// authError turns an AuthFailure into the AwsError a service of the given protocol family returns.
//
// Choices, with the evidence behind them:
// - JSON services on the coral framework (DynamoDB, ECS, ECR, Secrets Manager, EventBridge) answer
//   HTTP 400 with com.amazon.coral.service#MissingAuthenticationTokenException,
//   #IncompleteSignatureException, #InvalidSignatureException (bad signature, expired signature,
//   wrong scope), #UnrecognizedClientException (unknown key or bad token) and
//   #ExpiredTokenException. The names, messages and 400 status are DynamoDB's, as recorded in
//   dynalite's index.js and in many client reports ("Signature expired: ... (... - 15 min.)").
// - Query services (SNS, STS) answer an XML ErrorResponse with HTTP 403 and the codes
//   MissingAuthenticationToken, SignatureDoesNotMatch (also used for an expired signature: STS says
//   "SignatureDoesNotMatch ... Signature expired: ..." in aws-cli reports), InvalidClientTokenId and
//   ExpiredToken; IncompleteSignature is 400 as in the AWS common-errors table.
// - SQS speaks JSON but is "query compatible": the body's __type is the coral exception and the
//   x-amzn-query-error header carries the legacy query code (InvalidClientTokenId;Sender, ...), with
//   the query protocol's 403. This combination is inferred, not observed: SDK users of the JSON
//   protocol report InvalidClientTokenId for SQS, which is what the header gives them.
function authError(family, failure) {
  const coral = {
    [KIND.MISSING]: ['MissingAuthenticationTokenException', 'MissingAuthenticationToken', 403],
    [KIND.INCOMPLETE]: ['IncompleteSignatureException', 'IncompleteSignature', 400],
    [KIND.EXPIRED_SIGNATURE]: ['InvalidSignatureException', 'SignatureDoesNotMatch', 403],
    [KIND.SCOPE]: ['InvalidSignatureException', 'SignatureDoesNotMatch', 403],
    [KIND.UNKNOWN_KEY]: ['UnrecognizedClientException', 'InvalidClientTokenId', 403],
    [KIND.MISMATCH]: ['InvalidSignatureException', 'SignatureDoesNotMatch', 403],
    [KIND.BAD_TOKEN]: ['UnrecognizedClientException', 'InvalidClientTokenId', 403],
    [KIND.EXPIRED_TOKEN]: ['ExpiredTokenException', 'ExpiredToken', 403],
  }[failure.kind];
  if (family === 'query') {
    return new AwsError(coral[1], failure.message, { status: coral[2] });
  }
  if (family === 'sqs-json') {
    return new AwsError(coral[0], failure.message, {
      status: coral[2],
      type: 'com.amazon.coral.service#' + coral[0],
      queryCode: coral[1],
    });
  }
  return new AwsError(coral[0], failure.message, { status: 400, type: 'com.amazon.coral.service#' + coral[0] });
}

module.exports = { verify, authError, AuthFailure, KIND, headerMap, SKEW_MS };
