'use strict';
// AWS Secrets Manager (secretsmanager.*, JSON 1.1): CreateSecret, GetSecretValue, PutSecretValue and
// DescribeSecret, with version stages AWSCURRENT/AWSPREVIOUS moving as AWS moves them.

const { AwsError, uuid, randomChars, parseArn } = require('./util');

const MAX_SECRET_BYTES = 65536;

// Secrets Manager spells its error message key "Message"; see messageKey in the service meta.
function notFound(message) {
  return new AwsError('ResourceNotFoundException', message || "Secrets Manager can't find the specified secret.");
}
function invalidParameter(message) {
  return new AwsError('InvalidParameterException', message);
}

class SecretsService {
  constructor(sim) {
    this.sim = sim;
    this.secrets = new Map();
  }

  reset() {
    this.secrets.clear();
  }

  async call(op, input, call) {
    switch (op) {
      case 'CreateSecret': return this.create(input, call);
      case 'GetSecretValue': return this.getValue(input, call);
      case 'PutSecretValue': return this.putValue(input, call);
      case 'DescribeSecret': return this.describe(input, call);
      default: return undefined;
    }
  }

  // find resolves a SecretId (name, full ARN or ARN without the random suffix) for the caller.
  find(secretId, call, action) {
    if (secretId === undefined || secretId === null || secretId === '') {
      throw invalidParameter('You must provide a value for SecretId.');
    }
    if (String(secretId).startsWith('arn:')) {
      const a = parseArn(secretId);
      if (!a || a.service !== 'secretsmanager') throw notFound();
      if (a.account !== call.account) {
        throw new AwsError('AccessDeniedException', 'User: ' + call.arn + ' is not authorized to perform: secretsmanager:' + action + ' on resource: ' + secretId +
          ' because no resource-based policy allows the secretsmanager:' + action + ' action');
      }
      for (const s of this.secrets.values()) {
        if (s.account === call.account && s.region === call.region && (s.arn === secretId || s.arn.slice(0, -7) === secretId)) return s;
      }
      throw notFound();
    }
    const s = this.secrets.get(call.account + '/' + call.region + '/' + secretId);
    if (!s) throw notFound();
    return s;
  }

  static value(input) {
    const hasString = input.SecretString !== undefined && input.SecretString !== null;
    const hasBinary = input.SecretBinary !== undefined && input.SecretBinary !== null;
    if (hasString && hasBinary) throw invalidParameter('You can\'t specify both a binary secret value and a string secret value in the same secret.');
    if (hasString && Buffer.byteLength(String(input.SecretString)) > MAX_SECRET_BYTES) throw invalidParameter('Secret string too large.');
    if (hasString) return { SecretString: String(input.SecretString) };
    if (hasBinary) return { SecretBinary: String(input.SecretBinary) };
    return null;
  }

  // createSecret stores a secret for an account and region; used by the API and by seeding.
  createSecret(account, region, input) {
    const name = input.Name;
    if (!name || !/^[A-Za-z0-9/_+=.@-]{1,512}$/.test(name)) throw invalidParameter('Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!');
    const key = account + '/' + region + '/' + name;
    if (this.secrets.has(key)) {
      throw new AwsError('ResourceExistsException', 'The operation failed because the secret ' + name + ' already exists.');
    }
    const s = {
      account,
      region,
      name,
      arn: 'arn:aws:secretsmanager:' + region + ':' + account + ':secret:' + name + '-' + randomChars(6, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'),
      description: input.Description,
      created: Date.now() / 1000,
      versions: new Map(),
      tags: input.Tags || [],
    };
    const v = SecretsService.value(input);
    let versionId = null;
    if (v) {
      versionId = input.ClientRequestToken || uuid();
      s.versions.set(versionId, { id: versionId, value: v, stages: ['AWSCURRENT'], created: Date.now() / 1000 });
    }
    this.secrets.set(key, s);
    return { s, versionId };
  }

  create(input, call) {
    const { s, versionId } = this.createSecret(call.account, call.region, input);
    const out = { ARN: s.arn, Name: s.name };
    if (versionId) out.VersionId = versionId;
    return out;
  }

  getValue(input, call) {
    const s = this.find(input.SecretId, call, 'GetSecretValue');
    let v = null;
    if (input.VersionId !== undefined) {
      v = s.versions.get(input.VersionId);
      if (!v || (input.VersionStage !== undefined && v.stages.indexOf(input.VersionStage) < 0)) {
        throw notFound("Secrets Manager can't find the specified secret value for VersionId: " + input.VersionId);
      }
    } else {
      const stage = input.VersionStage || 'AWSCURRENT';
      for (const x of s.versions.values()) if (x.stages.indexOf(stage) >= 0) v = x;
      if (!v) throw notFound("Secrets Manager can't find the specified secret value for staging label: " + stage);
    }
    return Object.assign({ ARN: s.arn, Name: s.name, VersionId: v.id }, v.value, { VersionStages: v.stages.slice(), CreatedDate: v.created });
  }

  putValue(input, call) {
    const s = this.find(input.SecretId, call, 'PutSecretValue');
    const value = SecretsService.value(input);
    if (!value) throw invalidParameter('You must provide either SecretString or SecretBinary.');
    const id = input.ClientRequestToken || uuid();
    const existing = s.versions.get(id);
    if (existing) {
      // A repeated ClientRequestToken is idempotent only with the same value.
      if (JSON.stringify(existing.value) !== JSON.stringify(value)) {
        throw new AwsError('ResourceExistsException', 'You can\'t modify an existing version, you can only create a new version.');
      }
      return { ARN: s.arn, Name: s.name, VersionId: id, VersionStages: existing.stages.slice() };
    }
    const stages = input.VersionStages && input.VersionStages.length ? input.VersionStages.slice() : ['AWSCURRENT'];
    for (const st of stages) {
      for (const v of s.versions.values()) {
        const i = v.stages.indexOf(st);
        if (i < 0) continue;
        v.stages.splice(i, 1);
        if (st === 'AWSCURRENT') {
          for (const w of s.versions.values()) w.stages = w.stages.filter((x) => x !== 'AWSPREVIOUS');
          v.stages.push('AWSPREVIOUS');
        }
      }
    }
    s.versions.set(id, { id, value, stages, created: Date.now() / 1000 });
    // Versions left with no stage are deprecated; AWS keeps about 100, the sim keeps them all.
    return { ARN: s.arn, Name: s.name, VersionId: id, VersionStages: stages.slice() };
  }

  describe(input, call) {
    const s = this.find(input.SecretId, call, 'DescribeSecret');
    const stages = {};
    for (const v of s.versions.values()) if (v.stages.length) stages[v.id] = v.stages.slice();
    const out = { ARN: s.arn, Name: s.name, CreatedDate: s.created, VersionIdsToStages: stages, Tags: s.tags };
    if (s.description !== undefined) out.Description = s.description;
    return out;
  }

  list() {
    return Array.from(this.secrets.values()).map((s) => ({ arn: s.arn, name: s.name, account: s.account, region: s.region, versions: s.versions.size }));
  }
}

SecretsService.meta = {
  name: 'secretsmanager',
  signingName: 'secretsmanager',
  protocol: 'json',
  targetPrefix: 'secretsmanager',
  contentType: 'application/x-amz-json-1.1',
  errorFamily: 'coral-json',
  messageKey: 'Message',
  operations: ['CreateSecret', 'GetSecretValue', 'PutSecretValue', 'DescribeSecret'],
};

module.exports = { SecretsService };
