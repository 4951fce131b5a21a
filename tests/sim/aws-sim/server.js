#!/usr/bin/env node
'use strict';
// aws-sim: a local simulator of the AWS services qfs uses (SQS, SNS, STS, ECS, ECR, Secrets Manager,
// EventBridge, DynamoDB) on one loopback port, with SigV4 verification, fault injection and a call
// log. Run it as a program (see usage below) or call start() from tests.

const fs = require('fs');
const path = require('path');
const { IdentityStore } = require('./identity');
const { Faults } = require('./faults');
const { CallLog } = require('./calls');
const { Router } = require('./router');
const { Admin } = require('./admin');
const { SqsService } = require('./sqs');
const { SnsService } = require('./sns');
const { StsService } = require('./sts');
const { EcsService } = require('./ecs');
const { EcrService } = require('./ecr');
const { SecretsService } = require('./secrets');
const { EventsService } = require('./events');
const { DynamoDbService } = require('./dynamodb');
const { AwsError } = require('./util');

const DEFAULT_SEED = path.join(__dirname, '..', 'seed', 'default.json');
const USAGE = 'usage: node tests/sim/aws-sim/server.js [--host 127.0.0.1] [--port 0] [--seed PATH|none] [--region eu-west-1]\n' +
  '                                         [--credentials FILE] [--dynamodb-create-table-ms 0]\n';

class Sim {
  constructor(opts) {
    this.options = opts || {};
    this.host = this.options.host || '127.0.0.1';
    this.region = this.options.region || 'eu-west-1';
    this.seedPath = this.options.seed === undefined || this.options.seed === null ? DEFAULT_SEED : this.options.seed;
    this.seed = this.readSeed();
    this.hubAccount = String(this.options.hubAccount || this.seed.hub_account || '111122223333');
    this.extraCredentials = this.readCredentialsFile();
    this.url = null;
    this.identity = new IdentityStore({ hubAccount: this.hubAccount, region: this.region });
    this.faults = new Faults();
    this.calls = new CallLog();
    this.services = {};
    for (const Cls of [SqsService, SnsService, StsService, EcsService, EcrService, SecretsService, EventsService, DynamoDbService]) {
      this.services[Cls.meta.name] = new Cls(this);
    }
    this.router = new Router(this);
    this.admin = new Admin(this);
    this.loadSeed();
  }

  readSeed() {
    if (this.seedPath === false || this.seedPath === 'none' || this.seedPath === '') return {};
    if (typeof this.seedPath === 'object') return this.seedPath;
    return JSON.parse(fs.readFileSync(this.seedPath, 'utf8'));
  }

  // readCredentialsFile loads extra IAM user keys: a JSON array (or {credentials: [...]}) of
  // {access_key_id, secret_access_key, account, user_name?}.
  readCredentialsFile() {
    const file = this.options.credentials;
    if (!file) return [];
    const data = JSON.parse(fs.readFileSync(file, 'utf8'));
    return Array.isArray(data) ? data : data.credentials || [];
  }

  seedSecret(s) {
    const input = {
      Name: s.name || s.Name,
      SecretString: s.secret_string !== undefined ? (typeof s.secret_string === 'string' ? s.secret_string : JSON.stringify(s.secret_string)) : s.SecretString,
      SecretBinary: s.secret_binary !== undefined ? s.secret_binary : s.SecretBinary,
      Description: s.description,
    };
    const { s: secret } = this.services.secretsmanager.createSecret(String(s.account || this.hubAccount), s.region || this.region, input);
    return secret.arn;
  }

  loadSeed() {
    const defaults = { account: this.hubAccount, region: this.region };
    for (const c of this.extraCredentials.concat(this.seed.credentials || [])) this.identity.addUser(c);
    for (const r of this.seed.roles || []) this.services.sts.addRole(r);
    for (const td of this.seed.task_definitions || []) this.services.ecs.addTaskDefinition(td, defaults);
    for (const img of this.seed.images || []) this.services.ecr.addImage(img, defaults);
    for (const s of this.seed.secrets || []) this.seedSecret(s);
  }

  // reset returns the sim to its state at start: seed data only, no queues, topics, rules,
  // tables, faults, calls or sessions.
  async reset() {
    for (const name of Object.keys(this.services)) {
      if (name !== 'dynamodb') this.services[name].reset();
    }
    await this.services.dynamodb.reset();
    this.identity.reset();
    this.faults.reset();
    this.calls.reset();
    this.loadSeed();
  }

  listen(port) {
    return new Promise((resolve, reject) => {
      const server = this.router.server;
      server.once('error', reject);
      server.listen(port || 0, this.host, () => {
        server.removeListener('error', reject);
        this.port = server.address().port;
        const shown = this.host === '0.0.0.0' || this.host === '::' ? '127.0.0.1' : this.host;
        this.url = 'http://' + (shown.indexOf(':') >= 0 ? '[' + shown + ']' : shown) + ':' + this.port;
        resolve();
      });
    });
  }

  async close() {
    const server = this.router.server;
    this.services.sqs.close();
    await new Promise((resolve) => {
      server.close(() => resolve());
      if (server.closeAllConnections) setImmediate(() => server.closeAllConnections());
    });
    await this.services.dynamodb.close();
  }
}

// start runs a sim in this process. opts: {host, port, seed (path, object, or false), region,
// credentials, hubAccount, dynamodbCreateTableMs}. It resolves to {port, url, close(), sim}.
async function start(opts) {
  const sim = new Sim(opts);
  await sim.listen(opts && opts.port);
  return { port: sim.port, url: sim.url, close: () => sim.close(), sim };
}

function parseArgs(argv) {
  const opts = {};
  const names = { '--host': 'host', '--port': 'port', '--seed': 'seed', '--region': 'region', '--credentials': 'credentials',
    '--dynamodb-create-table-ms': 'dynamodbCreateTableMs', '--hub-account': 'hubAccount' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') {
      process.stdout.write(USAGE);
      process.exit(0);
    }
    const eq = a.indexOf('=');
    const flag = eq > 0 ? a.slice(0, eq) : a;
    if (!names[flag]) throw new Error('unknown option ' + a);
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new Error(flag + ' needs a value');
    opts[names[flag]] = value;
  }
  if (opts.port !== undefined) {
    opts.port = Number(opts.port);
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error('--port must be 0..65535');
  }
  return opts;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write('aws-sim: ' + e.message + '\n' + USAGE);
    process.exit(2);
  }
  let handle;
  try {
    handle = await start(opts);
  } catch (e) {
    process.stderr.write('aws-sim: cannot start: ' + (e instanceof AwsError ? e.message : e.stack || e) + '\n');
    process.exit(1);
  }
  process.stdout.write(JSON.stringify({ service: 'aws-sim', port: handle.port, url: handle.url }) + '\n');
  process.stderr.write('aws-sim: listening on ' + handle.url + ' (hub account ' + handle.sim.hubAccount + ', region ' + handle.sim.region + ')\n');
  let stopping = false;
  const stop = (sig) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write('aws-sim: ' + sig + ', shutting down\n');
    const force = setTimeout(() => process.exit(0), 5000);
    force.unref();
    handle.close().then(() => process.exit(0), (e) => {
      process.stderr.write('aws-sim: error while closing: ' + e + '\n');
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (require.main === module) main();

module.exports = { start, Sim };
