'use strict';
// The call log: every non-admin request with its outcome, plus running counts per endpoint and status.

const DEFAULT_CAP = 20000;

class CallLog {
  constructor(cap) {
    this.cap = cap || DEFAULT_CAP;
    this.clear();
  }

  clear() {
    this.calls = [];
    this.seq = 0;
    this.byEndpoint = {};
    this.byStatus = {};
    this.byEndpointStatus = {};
  }

  // Records one call; status is a number, or "reset" when the connection was dropped unanswered.
  record(entry) {
    this.seq += 1;
    const e = Object.assign({ seq: this.seq }, entry);
    this.calls.push(e);
    // Trimmed a tenth at a time: cutting one entry per call moves the whole log on every call.
    if (this.calls.length > this.cap + this.cap / 10) this.calls.splice(0, this.calls.length - this.cap);
    const status = String(e.status);
    this.byEndpoint[e.endpoint] = (this.byEndpoint[e.endpoint] || 0) + 1;
    this.byStatus[status] = (this.byStatus[status] || 0) + 1;
    const per = this.byEndpointStatus[e.endpoint] || (this.byEndpointStatus[e.endpoint] = {});
    per[status] = (per[status] || 0) + 1;
    return e;
  }

  // Returns calls after seq `since` (optionally one endpoint's) and the counts since the last clear.
  snapshot(opts) {
    const o = opts || {};
    const since = Number.isFinite(o.since) ? o.since : 0;
    const calls = this.calls.filter((c) => c.seq > since && (!o.endpoint || c.endpoint === o.endpoint));
    return {
      total: this.seq,
      calls,
      counts: {
        byEndpoint: Object.assign({}, this.byEndpoint),
        byStatus: Object.assign({}, this.byStatus),
        byEndpointStatus: JSON.parse(JSON.stringify(this.byEndpointStatus)),
      },
    };
  }
}

module.exports = { CallLog };
