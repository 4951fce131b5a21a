'use strict';
// AWS STS over the query protocol: AssumeRole into roles from the seed (checked against each role's
// trusted accounts and optional external id) and GetCallerIdentity.

const { AwsError, stableChars, isoSeconds, parseArn } = require('./util');

// AWS's default MaxSessionDuration for a role is one hour; a role may raise it to 12 hours.
const DEFAULT_MAX_SESSION_S = 3600;
// A role assumed with role credentials ("role chaining") is limited to one hour whatever the role says.
const CHAINED_MAX_SESSION_S = 3600;

function validationError(message) {
  return new AwsError('ValidationError', message, { status: 400 });
}

class StsService {
  constructor(sim) {
    this.sim = sim;
    this.roles = new Map();
  }

  reset() {
    this.roles.clear();
  }

  // addRole registers a role: {arn, trusted_accounts[], external_id?, max_session_duration?}.
  addRole(spec) {
    const a = parseArn(spec.arn);
    if (!a || a.service !== 'iam' || !/^\d{12}$/.test(a.account) || !/^role\/.+/.test(a.resource)) {
      throw new AwsError('InvalidRole', 'a role needs an IAM role ARN, arn:aws:iam::<account>:role/<name>');
    }
    const max = spec.max_session_duration === undefined ? DEFAULT_MAX_SESSION_S : Number(spec.max_session_duration);
    if (!(Number.isInteger(max) && max >= 3600 && max <= 43200)) throw new AwsError('InvalidRole', 'max_session_duration must be 3600..43200');
    const role = {
      arn: spec.arn,
      account: a.account,
      name: a.resource.split('/').pop(),
      trusted_accounts: (spec.trusted_accounts || []).map(String),
      external_id: spec.external_id === undefined ? null : String(spec.external_id),
      max_session_duration: max,
      role_id: 'AROA' + stableChars('role:' + spec.arn, 17),
    };
    this.roles.set(spec.arn, role);
    return role;
  }

  listRoles() {
    return Array.from(this.roles.values()).map((r) => {
      const c = Object.assign({}, r);
      delete c.role_id;
      return c;
    });
  }

  async call(op, params, call) {
    if (op === 'AssumeRole') return this.assumeRole(params, call);
    if (op === 'GetCallerIdentity') {
      return { UserId: call.cred.userId, Account: call.account, Arn: call.cred.arn };
    }
    return undefined;
  }

  assumeRole(params, call) {
    const errors = [];
    const roleArn = params.RoleArn;
    const session = params.RoleSessionName;
    if (roleArn === undefined) errors.push("Value null at 'roleArn' failed to satisfy constraint: Member must not be null");
    else if (roleArn.length < 20) errors.push("Value '" + roleArn + "' at 'roleArn' failed to satisfy constraint: Member must have length greater than or equal to 20");
    if (session === undefined) errors.push("Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null");
    else if (session.length < 2 || session.length > 64) errors.push("Value '" + session + "' at 'roleSessionName' failed to satisfy constraint: Member must have length " + (session.length < 2 ? 'greater than or equal to 2' : 'less than or equal to 64'));
    else if (!/^[\w+=,.@-]*$/.test(session)) errors.push("Value '" + session + "' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*");
    let duration = 3600;
    if (params.DurationSeconds !== undefined) {
      duration = Number(params.DurationSeconds);
      if (!Number.isInteger(duration)) errors.push("Value '" + params.DurationSeconds + "' at 'durationSeconds' failed to satisfy constraint: Member must be an integer");
      else if (duration < 900) errors.push("Value '" + duration + "' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900");
      else if (duration > 43200) errors.push("Value '" + duration + "' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200");
    }
    if (errors.length) {
      throw validationError(errors.length + ' validation error' + (errors.length > 1 ? 's' : '') + ' detected: ' + errors.join('; '));
    }
    const role = this.roles.get(roleArn);
    const denied = () => new AwsError('AccessDenied', 'User: ' + call.cred.arn + ' is not authorized to perform: sts:AssumeRole on resource: ' + roleArn, { status: 403 });
    // AWS gives the same AccessDenied whether the role is missing or does not trust the caller.
    if (!role || role.trusted_accounts.indexOf(call.account) < 0) throw denied();
    if (role.external_id !== null && params.ExternalId !== role.external_id) throw denied();
    const chained = call.cred.kind !== 'user';
    if (chained && duration > CHAINED_MAX_SESSION_S) {
      throw validationError('The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.');
    }
    if (duration > role.max_session_duration) {
      throw validationError('The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
    }
    const cred = this.sim.identity.issueSession({
      account: role.account,
      roleArn: role.arn,
      roleName: role.name,
      roleId: role.role_id,
      sessionName: session,
      durationS: duration,
      chained,
    });
    return {
      Credentials: {
        AccessKeyId: cred.accessKeyId,
        SecretAccessKey: cred.secretAccessKey,
        SessionToken: cred.sessionToken,
        Expiration: isoSeconds(cred.expiration),
      },
      AssumedRoleUser: { AssumedRoleId: cred.userId, Arn: cred.arn },
    };
  }
}

StsService.meta = {
  name: 'sts',
  signingName: 'sts',
  protocol: 'query',
  xmlns: 'https://sts.amazonaws.com/doc/2011-06-15/',
  version: '2011-06-15',
  errorFamily: 'query',
  operations: ['AssumeRole', 'GetCallerIdentity'],
};

module.exports = { StsService };
