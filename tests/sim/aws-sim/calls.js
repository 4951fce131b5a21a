'use strict';
// The call log: every AWS API call the sim answered, with who made it and how it ended, plus
// counts per service, operation and status that survive the log's size cap.

const { isoSeconds } = require('./util');

// The log keeps the most recent calls only (between MAX_CALLS and a tenth more), so a long-running
// sim does not grow without bound.
const MAX_CALLS = 5000;

class CallLog {
  constructor() {
    this.reset();
  }

  reset() {
    this.calls = [];
    this.counts = {};
    this.seq = 0;
  }

  record(entry) {
    const e = {
      seq: ++this.seq,
      time: new Date().toISOString(),
      service: entry.service,
      operation: entry.operation,
      account: entry.account || null,
      access_key_id: entry.accessKeyId || null,
      region: entry.region || null,
      status: entry.status,
      error: entry.error || null,
      fault: entry.fault || null,
      duration_ms: entry.durationMs,
    };
    this.calls.push(e);
    // Trimmed a tenth at a time: cutting one entry per call moves the whole log on every call.
    if (this.calls.length > MAX_CALLS + MAX_CALLS / 10) this.calls.splice(0, this.calls.length - MAX_CALLS);
    const s = (this.counts[e.service] = this.counts[e.service] || {});
    const o = (s[e.operation] = s[e.operation] || {});
    o[e.status] = (o[e.status] || 0) + 1;
    return e;
  }

  // query returns the calls matching the filters, and the counts over all calls since the last reset.
  query(filter) {
    const f = filter || {};
    let calls = this.calls;
    if (f.service) calls = calls.filter((c) => c.service === f.service);
    if (f.operation) calls = calls.filter((c) => c.operation === f.operation);
    if (f.account) calls = calls.filter((c) => c.account === f.account);
    if (f.status) calls = calls.filter((c) => String(c.status) === String(f.status));
    if (f.since) calls = calls.filter((c) => c.seq > Number(f.since));
    return { now: isoSeconds(), last_seq: this.seq, calls, counts: this.counts };
  }
}

module.exports = { CallLog };
