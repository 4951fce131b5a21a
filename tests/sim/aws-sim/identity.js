'use strict';
// The credential store: long-term IAM user keys, temporary (ASIA) session credentials from STS,
// and the ECS container-credentials endpoint that hands the task role's keys to a container.

const { randomChars, stableChars, isoSeconds, AwsError } = require('./util');

// The hub account's deterministic IAM user key; documented in README.md.
const HUB_ACCESS_KEY_ID = 'AKIAQFSSIMHUB0000001';
const HUB_SECRET_ACCESS_KEY = 'qfs-sim-hub-secret-0000000000000000000001';
const HUB_USER_NAME = 'qfs-sim-hub';

// Real ECS agents hand out task-role credentials valid for about six hours.
const CONTAINER_CREDENTIALS_LIFETIME_S = 6 * 3600;

const SECRET_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

class IdentityStore {
  constructor(opts) {
    this.hubAccount = opts.hubAccount;
    this.defaultRegion = opts.region;
    this.keys = new Map();
    this.container = null;
    this.containerRoleArn = 'arn:aws:iam::' + this.hubAccount + ':role/QfsTaskRole';
    this.reset();
  }

  // reset drops every key and session and re-creates the hub user key.
  reset() {
    this.keys.clear();
    this.container = null;
    this.containerRoleArn = 'arn:aws:iam::' + this.hubAccount + ':role/QfsTaskRole';
    this.addUser({
      access_key_id: HUB_ACCESS_KEY_ID,
      secret_access_key: HUB_SECRET_ACCESS_KEY,
      account: this.hubAccount,
      user_name: HUB_USER_NAME,
    });
  }

  // addUser registers a long-term IAM user key. It throws an AwsError on a malformed entry.
  addUser(entry) {
    const akid = entry.access_key_id || entry.AccessKeyId;
    const secret = entry.secret_access_key || entry.SecretAccessKey;
    const account = String(entry.account || this.hubAccount);
    const userName = entry.user_name || 'qfs-sim-user-' + String(akid).slice(-4).toLowerCase();
    if (!akid || !/^[A-Z0-9]{16,128}$/.test(akid) || !secret || !/^\d{12}$/.test(account)) {
      throw new AwsError('InvalidCredentials', 'credentials need access_key_id (A-Z0-9, 16..128), secret_access_key and a 12-digit account');
    }
    const cred = {
      accessKeyId: akid,
      secretAccessKey: secret,
      sessionToken: null,
      expiration: null,
      account,
      kind: 'user',
      arn: 'arn:aws:iam::' + account + ':user/' + userName,
      userId: 'AIDA' + stableChars('user:' + akid, 17),
    };
    this.keys.set(akid, cred);
    return cred;
  }

  // issueSession creates temporary credentials for an assumed role. durationS is their lifetime.
  issueSession(params) {
    const akid = 'ASIA' + randomChars(16);
    const cred = {
      accessKeyId: akid,
      secretAccessKey: randomChars(40, SECRET_ALPHABET),
      // Real session tokens are long opaque strings of varying size; this one is a few hundred bytes.
      sessionToken: 'IQoJb3JpZ2luX2VjE' + randomChars(300, SECRET_ALPHABET),
      expiration: Date.now() + params.durationS * 1000,
      account: params.account,
      kind: params.kind || 'assumed-role',
      roleArn: params.roleArn,
      sessionName: params.sessionName,
      arn: 'arn:aws:sts::' + params.account + ':assumed-role/' + params.roleName + '/' + params.sessionName,
      roleId: params.roleId,
      userId: params.roleId + ':' + params.sessionName,
      chained: !!params.chained,
    };
    this.keys.set(akid, cred);
    return cred;
  }

  lookup(akid) {
    return this.keys.get(akid) || null;
  }

  // expire makes temporary credentials expire now; it returns false for unknown or long-term keys.
  expire(akid) {
    const c = this.keys.get(akid);
    if (!c || c.kind === 'user') return false;
    c.expiration = Date.now() - 1000;
    return true;
  }

  // containerCredentials returns the credentials the ECS agent would hand out now, issuing fresh
  // ones when there are none yet or the current ones have expired.
  containerCredentials() {
    const now = Date.now();
    if (!this.container || this.container.expiration <= now) {
      this.container = this._issueContainer(CONTAINER_CREDENTIALS_LIFETIME_S);
    }
    const c = this.container;
    return {
      AccessKeyId: c.accessKeyId,
      Expiration: isoSeconds(c.expiration),
      RoleArn: c.roleArn,
      SecretAccessKey: c.secretAccessKey,
      Token: c.sessionToken,
    };
  }

  _issueContainer(lifetimeS) {
    const roleName = this.containerRoleArn.split('/').pop();
    return this.issueSession({
      account: this.containerRoleArn.split(':')[4],
      roleArn: this.containerRoleArn,
      roleName,
      roleId: 'AROA' + stableChars('role:' + this.containerRoleArn, 17),
      sessionName: randomChars(32, 'abcdef0123456789'),
      durationS: lifetimeS,
      kind: 'container',
    });
  }

  // configureContainer changes the container credentials: a new role, a forced rotation, or the
  // expiry of the current credentials (to test refresh before and after expiry).
  configureContainer(opts) {
    if (opts.role_arn) {
      if (!/^arn:aws[a-z-]*:iam::\d{12}:role\/.+/.test(opts.role_arn)) {
        throw new AwsError('InvalidParameter', 'role_arn must be an IAM role ARN');
      }
      this.containerRoleArn = opts.role_arn;
      this.container = null;
    }
    if (opts.rotate || !this.container) {
      this.container = this._issueContainer(CONTAINER_CREDENTIALS_LIFETIME_S);
    }
    let exp = null;
    if (opts.expires_in_seconds !== undefined) exp = Date.now() + Number(opts.expires_in_seconds) * 1000;
    if (opts.expiration !== undefined) exp = Date.parse(opts.expiration);
    if (exp !== null) {
      if (!Number.isFinite(exp)) throw new AwsError('InvalidParameter', 'expiration must be an ISO-8601 time');
      this.container.expiration = exp;
    }
    return this.containerState();
  }

  containerState() {
    const c = this.container;
    return {
      role_arn: this.containerRoleArn,
      current: c ? { access_key_id: c.accessKeyId, expiration: isoSeconds(c.expiration), expired: c.expiration <= Date.now() } : null,
    };
  }

  // list returns every key without secrets, for the admin API.
  list() {
    const out = [];
    for (const c of this.keys.values()) {
      out.push({
        access_key_id: c.accessKeyId,
        account: c.account,
        kind: c.kind,
        arn: c.arn,
        expiration: c.expiration ? isoSeconds(c.expiration) : null,
      });
    }
    return out;
  }
}

module.exports = { IdentityStore, HUB_ACCESS_KEY_ID, HUB_SECRET_ACCESS_KEY, HUB_USER_NAME };
