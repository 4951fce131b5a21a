'use strict';
// Scan-job timing profiles: how long each phase of a registry job takes, in milliseconds.

// fast: a whole job finishes in about a second; realistic: tens of seconds, with some jitter.
const PROFILES = {
  fast: { queueMs: 50, startMs: 50, listingMs: 200, pullMs: 200, scanMs: 500, jitter: 0 },
  realistic: { queueMs: 2000, startMs: 3000, listingMs: 8000, pullMs: 7000, scanMs: 20000, jitter: 0.2 },
};

const KEYS = ['queueMs', 'startMs', 'listingMs', 'pullMs', 'scanMs'];

function profile(name) {
  const p = PROFILES[name];
  if (!p) throw new Error(`unknown timing profile "${name}" (use fast or realistic)`);
  return Object.assign({ profile: name }, p);
}

// Applies { profile?, queueMs?, ..., jitter? } on top of the current timings and returns the result.
function update(current, body) {
  const b = body || {};
  let next = b.profile !== undefined ? profile(b.profile) : Object.assign({}, current);
  for (const k of KEYS) {
    if (b[k] === undefined) continue;
    if (!(typeof b[k] === 'number' && b[k] >= 0)) throw new Error(`${k} must be a non-negative number of milliseconds`);
    next[k] = b[k];
  }
  if (b.jitter !== undefined) {
    if (!(typeof b.jitter === 'number' && b.jitter >= 0 && b.jitter < 1)) throw new Error('jitter must be a fraction in [0, 1)');
    next.jitter = b.jitter;
  }
  if (b.profile === undefined && KEYS.some((k) => b[k] !== undefined)) next.profile = 'custom';
  return next;
}

// One phase duration, with the profile's jitter applied.
function duration(timings, key) {
  const base = timings[key];
  if (!timings.jitter) return base;
  return Math.max(0, Math.round(base * (1 + (Math.random() * 2 - 1) * timings.jitter)));
}

module.exports = { profile, update, duration, PROFILES, KEYS };
