'use strict';
// Sliding-window rate limiting per CS path pattern, with the X-RateLimit-* response headers.

// Default buckets from the CS rate-limit table; vxx is v1.2 or v1.3. The more specific /list
// patterns come first because a path is counted in the first bucket it matches.
function defaultBuckets() {
  return [
    { name: 'containers-list', re: /^\/csapi\/v1\.[23]\/containers\/list$/, limit: 120, windowSec: 60 },
    { name: 'containers', re: /^\/csapi\/v1\.[23]\/containers(\/.*)?$/, limit: 5000, windowSec: 60 },
    { name: 'images-list', re: /^\/csapi\/v1\.[23]\/images\/list$/, limit: 120, windowSec: 60 },
    { name: 'images', re: /^\/csapi\/v1\.[23]\/images(\/.*)?$/, limit: 5000, windowSec: 60 },
    { name: 'registry', re: /^\/csapi\/v1\.[23]\/registry(\/.*)?$/, limit: 1000, windowSec: 60 },
    { name: 'sensors', re: /^\/csapi\/v1\.[23]\/sensors(\/.*)?$/, limit: 1000, windowSec: 60 },
  ];
}

class RateLimiter {
  constructor() {
    this.reset(true);
  }

  // Restores default limits (when full is true) and forgets every call counted so far.
  reset(full) {
    if (full) {
      this.buckets = defaultBuckets();
      this.enabled = true;
      // The CS doc does not list X-RateLimit-ToWait-Sec; QSDK saw it on 429s. On by default, toggleable.
      this.toWaitHeader = true;
      // No Qualys doc mentions Retry-After; off unless a test wants it.
      this.retryAfterHeader = false;
    }
    this.hits = new Map();
    for (const b of this.buckets) this.hits.set(b.name, []);
  }

  bucketFor(path) {
    return this.buckets.find((b) => b.re.test(path)) || null;
  }

  // Drops calls that have left the window and returns the remaining timestamps.
  window(bucket, now) {
    const list = this.hits.get(bucket.name);
    const edge = now - bucket.windowSec * 1000;
    let drop = 0;
    while (drop < list.length && list[drop] <= edge) drop += 1;
    if (drop) list.splice(0, drop);
    return list;
  }

  headersFor(bucket, remaining) {
    return {
      'X-RateLimit-Limit': String(bucket.limit),
      'X-RateLimit-Window-Sec': String(bucket.windowSec),
      'X-RateLimit-Remaining': String(Math.max(0, remaining)),
    };
  }

  // Headers describing the window without counting a call (used for answers given before counting).
  peek(path, now) {
    const bucket = this.bucketFor(path);
    if (!bucket) return {};
    const list = this.window(bucket, now || Date.now());
    return this.headersFor(bucket, bucket.limit - list.length);
  }

  // The headers a 429 carries: the three standard ones plus the optional wait hints.
  rejectionHeaders(bucket, list, now) {
    const headers = this.headersFor(bucket, 0);
    const oldest = list.length ? list[0] : now;
    const waitSec = Math.max(1, Math.ceil((oldest + bucket.windowSec * 1000 - now) / 1000));
    if (this.toWaitHeader) headers['X-RateLimit-ToWait-Sec'] = String(waitSec);
    if (this.retryAfterHeader) headers['Retry-After'] = String(waitSec);
    return headers;
  }

  // Counts one call. Returns { allowed, headers }; a rejected call is not counted in the window.
  take(path, now) {
    const t = now || Date.now();
    const bucket = this.bucketFor(path);
    if (!bucket) return { allowed: true, headers: {} };
    const list = this.window(bucket, t);
    if (this.enabled && list.length >= bucket.limit) {
      return { allowed: false, headers: this.rejectionHeaders(bucket, list, t), bucket: bucket.name };
    }
    list.push(t);
    return { allowed: true, headers: this.headersFor(bucket, bucket.limit - list.length), bucket: bucket.name };
  }

  // Headers for a 429 injected by a fault rule: the bucket looks exhausted.
  stormHeaders(path, now) {
    const t = now || Date.now();
    const bucket = this.bucketFor(path);
    if (!bucket) return this.toWaitHeader ? { 'X-RateLimit-ToWait-Sec': '1' } : {};
    return this.rejectionHeaders(bucket, this.window(bucket, t), t);
  }

  // Applies admin settings: { enabled, toWaitHeader, retryAfterHeader, reset, buckets: { name: { limit, windowSec } } }.
  // Bucket settings may also be given at top level, e.g. { "images": { "limit": 3 } }.
  configure(body) {
    const b = body || {};
    if (b.reset) this.reset(false);
    for (const key of ['enabled', 'toWaitHeader', 'retryAfterHeader']) {
      if (b[key] !== undefined) {
        if (typeof b[key] !== 'boolean') throw new Error(`${key} must be a boolean`);
        this[key] = b[key];
      }
    }
    const settings = Object.assign({}, b.buckets || {});
    for (const bucket of this.buckets) if (b[bucket.name] && typeof b[bucket.name] === 'object') settings[bucket.name] = b[bucket.name];
    for (const [name, s] of Object.entries(settings)) {
      const bucket = this.buckets.find((x) => x.name === name);
      if (!bucket) throw new Error(`unknown rate-limit bucket "${name}"`);
      if (s.limit !== undefined) {
        if (!Number.isInteger(s.limit) || s.limit < 0) throw new Error(`${name}.limit must be a non-negative integer`);
        bucket.limit = s.limit;
      }
      if (s.windowSec !== undefined) {
        if (!(typeof s.windowSec === 'number' && s.windowSec > 0)) throw new Error(`${name}.windowSec must be positive`);
        bucket.windowSec = s.windowSec;
      }
    }
  }

  describe(now) {
    const t = now || Date.now();
    return {
      enabled: this.enabled,
      toWaitHeader: this.toWaitHeader,
      retryAfterHeader: this.retryAfterHeader,
      buckets: this.buckets.map((b) => ({
        name: b.name,
        pattern: b.re.source,
        limit: b.limit,
        windowSec: b.windowSec,
        used: this.window(b, t).length,
      })),
    };
  }
}

module.exports = { RateLimiter };
