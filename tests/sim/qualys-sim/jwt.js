'use strict';
// Token issuing and checking: HS512 JWTs as POST /auth returns them, plus static pre-issued tokens.

const crypto = require('crypto');

const DEFAULT_TTL_SEC = 4 * 60 * 60;
const DEFAULT_MODULES = ['CS', 'VM', 'CA', 'PM'];

function b64url(buf) {
  return Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

function fromB64url(str) {
  if (!/^[A-Za-z0-9_-]*$/.test(str)) throw new Error('not base64url');
  return Buffer.from(str.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

function isoSeconds(ms) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// A TokenIssuer signs tokens with a secret private to this simulator instance, so tokens from an
// earlier run (or any other issuer) are refused as invalid rather than accepted.
class TokenIssuer {
  constructor(opts) {
    const o = opts || {};
    this.secret = crypto.randomBytes(64);
    this.ttlSec = o.ttlSec > 0 ? o.ttlSec : DEFAULT_TTL_SEC;
    this.modules = Array.isArray(o.modules) ? o.modules.slice() : DEFAULT_MODULES.slice();
    this.seq = 0;
    // Tokens whose sequence number is at or below the watermark were expired by a test knob.
    this.expiredWatermark = 0;
    this.expiredAt = 0;
    this.staticTokens = new Map();
    for (const t of o.staticTokens || []) this.addStatic(t);
  }

  // Registers a static bearer token (QUALYS_API_TOKEN style) that is accepted until expired by a knob.
  addStatic(token) {
    if (typeof token === 'string' && token.length > 0) this.staticTokens.set(token, { expiredAt: null });
  }

  setTtl(sec) {
    if (!(sec > 0)) throw new Error('ttl must be a positive number of seconds');
    this.ttlSec = sec;
  }

  // Issues a token for a user; the payload mirrors the claims seen in Qualys' own sample token.
  issue(username, nowMs) {
    const now = nowMs || Date.now();
    this.seq += 1;
    const header = { alg: 'HS512', typ: 'JWT' };
    const payload = {
      sub: username,
      jti: `qsim-${this.seq}`,
      seq: this.seq,
      iss: 'qas',
      aud: 'qas',
      loginResponse: 'SUCCESSFUL',
      portalUserId: 90000001,
      qwebUserId: 80000001,
      usertype: 'fo',
      credentialType: 'basic',
      modulesAllowed: this.modules.slice(),
      iat: Math.floor(now / 1000),
      // exp is whole seconds, rounded up, so a token lives at least ttlSec.
      exp: Math.ceil((now + this.ttlSec * 1000) / 1000),
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
    const sig = crypto.createHmac('sha512', this.secret).update(signingInput).digest();
    return `${signingInput}.${b64url(sig)}`;
  }

  // Makes every token issued so far expired as of now; static tokens too when asked.
  expireAll(opts, nowMs) {
    const now = nowMs || Date.now();
    this.expiredWatermark = this.seq;
    this.expiredAt = now;
    if (opts && opts.includeStatic) {
      for (const entry of this.staticTokens.values()) entry.expiredAt = now;
    }
  }

  // Checks a bearer token. Returns { ok: true, claims } or { ok: false, expired, message }.
  verify(token, nowMs) {
    const now = nowMs || Date.now();
    const fixed = this.staticTokens.get(token);
    if (fixed) {
      if (fixed.expiredAt !== null) return expiredResult(fixed.expiredAt, now);
      return { ok: true, claims: { sub: 'api-token', modulesAllowed: this.modules.slice(), static: true } };
    }
    const parts = typeof token === 'string' ? token.split('.') : [];
    if (parts.length !== 3) return { ok: false, expired: false, message: 'Invalid JWT: a JWT must have three segments' };
    let header;
    let claims;
    let sig;
    try {
      header = JSON.parse(fromB64url(parts[0]).toString('utf8'));
      claims = JSON.parse(fromB64url(parts[1]).toString('utf8'));
      sig = fromB64url(parts[2]);
    } catch (e) {
      return { ok: false, expired: false, message: 'Malformed JWT: unable to decode token' };
    }
    if (!header || header.alg !== 'HS512') return { ok: false, expired: false, message: 'Invalid JWT: unsupported algorithm' };
    const expect = crypto.createHmac('sha512', this.secret).update(`${parts[0]}.${parts[1]}`).digest();
    if (sig.length !== expect.length || !crypto.timingSafeEqual(sig, expect)) {
      return { ok: false, expired: false, message: 'Invalid JWT signature: JWT validity cannot be asserted and should not be trusted' };
    }
    if (typeof claims.exp !== 'number') return { ok: false, expired: false, message: 'Invalid JWT: missing exp claim' };
    if (now >= claims.exp * 1000) return expiredResult(claims.exp * 1000, now);
    if (typeof claims.seq === 'number' && claims.seq <= this.expiredWatermark) return expiredResult(this.expiredAt, now);
    return { ok: true, claims };
  }
}

// The expired message imitates the JWT library wording that Qualys' Jenkins plugin keys re-auth on.
function expiredResult(expiredAtMs, now) {
  return {
    ok: false,
    expired: true,
    message: `JWT expired at ${isoSeconds(expiredAtMs)}. Current time: ${isoSeconds(now)}, a difference of ${Math.max(0, now - expiredAtMs)} milliseconds.  Allowed clock skew: 0 milliseconds.`,
  };
}

// Decodes a token's payload without checking it; tests use this to inspect claims.
function decodePayload(token) {
  return JSON.parse(fromB64url(String(token).split('.')[1]).toString('utf8'));
}

module.exports = { TokenIssuer, decodePayload, DEFAULT_TTL_SEC, DEFAULT_MODULES };
