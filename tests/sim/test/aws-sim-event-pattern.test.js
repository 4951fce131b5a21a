'use strict';
// Unit tests of aws-sim's EventBridge pattern matcher (tests/sim/aws-sim/event-pattern.js).

const test = require('node:test');
const assert = require('node:assert');
const { matches, validate, PatternError } = require('../aws-sim/event-pattern');

const EVENT = {
  version: '0',
  id: 'e1',
  'detail-type': 'AWS API Call via CloudTrail',
  source: 'aws.ecs',
  account: '111122223333',
  time: '2026-05-01T10:00:00Z',
  region: 'eu-west-1',
  resources: [],
  detail: {
    eventSource: 'ecs.amazonaws.com',
    eventName: 'RunTask',
    sourceIPAddress: '10.0.3.7',
    readOnly: false,
    errorCode: null,
    requestParameters: { cluster: 'batch', count: 3, tags: ['a', 'b'] },
    responseElements: { tasks: [{ containers: [{ image: 'nginx:1.25' }] }, { containers: [{ image: 'web:2' }] }] },
  },
};

test('exact values, nested objects and arrays', () => {
  assert.ok(matches({ source: ['aws.ecs'], detail: { eventName: ['RunTask', 'CreateService'] } }, EVENT));
  assert.ok(!matches({ source: ['aws.ecs'], detail: { eventName: ['CreateService'] } }, EVENT));
  assert.ok(matches({ detail: { requestParameters: { count: [3] } } }, EVENT));
  assert.ok(!matches({ detail: { requestParameters: { count: ['3'] } } }, EVENT), 'a string does not match a number');
  assert.ok(matches({ detail: { readOnly: [false] } }, EVENT));
  assert.ok(matches({ detail: { errorCode: [null] } }, EVENT));
  assert.ok(matches({ detail: { requestParameters: { tags: ['b'] } } }, EVENT), 'any element of an event array');
  assert.ok(matches({ detail: { responseElements: { tasks: { containers: { image: ['web:2'] } } } } }, EVENT));
  assert.ok(!matches({ detail: { missing: ['x'] } }, EVENT));
  assert.ok(matches(JSON.stringify({ account: ['111122223333'] }), EVENT), 'the pattern may be JSON text');
});

test('prefix, suffix, equals-ignore-case and wildcard', () => {
  assert.ok(matches({ source: [{ prefix: 'aws.' }] }, EVENT));
  assert.ok(!matches({ source: [{ prefix: 'qfs.' }] }, EVENT));
  assert.ok(matches({ detail: { eventSource: [{ suffix: '.amazonaws.com' }] } }, EVENT));
  assert.ok(matches({ detail: { eventName: [{ 'equals-ignore-case': 'runtask' }] } }, EVENT));
  assert.ok(matches({ detail: { eventName: [{ prefix: { 'equals-ignore-case': 'RUN' } }] } }, EVENT));
  assert.ok(matches({ detail: { eventSource: [{ wildcard: 'ecs.*.com' }] } }, EVENT));
  assert.ok(!matches({ detail: { eventSource: [{ wildcard: 'ec2.*' }] } }, EVENT));
});

test('anything-but, exists, numeric and cidr', () => {
  assert.ok(matches({ detail: { eventName: [{ 'anything-but': ['DescribeServices', 'ListTasks'] }] } }, EVENT));
  assert.ok(!matches({ detail: { eventName: [{ 'anything-but': 'RunTask' }] } }, EVENT));
  assert.ok(!matches({ detail: { eventName: [{ 'anything-but': { prefix: 'Run' } }] } }, EVENT));
  assert.ok(!matches({ detail: { nothing: [{ 'anything-but': 'x' }] } }, EVENT), 'anything-but needs the field');
  assert.ok(matches({ detail: { errorMessage: [{ exists: false }] } }, EVENT));
  assert.ok(matches({ detail: { eventName: [{ exists: true }] } }, EVENT));
  assert.ok(!matches({ detail: { eventName: [{ exists: false }] } }, EVENT));
  assert.ok(matches({ detail: { requestParameters: { count: [{ numeric: ['>', 0, '<=', 3] }] } } }, EVENT));
  assert.ok(!matches({ detail: { requestParameters: { count: [{ numeric: ['>', 3] }] } } }, EVENT));
  assert.ok(matches({ detail: { sourceIPAddress: [{ cidr: '10.0.0.0/16' }] } }, EVENT));
  assert.ok(!matches({ detail: { sourceIPAddress: [{ cidr: '10.1.0.0/16' }] } }, EVENT));
});

test('$or combines alternatives', () => {
  const p = { source: ['aws.ecs'], $or: [{ detail: { eventName: ['CreateService'] } }, { detail: { requestParameters: { cluster: ['batch'] } } }] };
  assert.ok(matches(p, EVENT));
  const q = { $or: [{ detail: { eventName: ['CreateService'] } }, { region: ['us-east-1'] }] };
  assert.ok(!matches(q, EVENT));
});

test('invalid patterns are rejected with a reason', () => {
  for (const bad of [{}, { source: 'aws.ecs' }, { source: [] }, { source: [{ prefix: 1 }] }, { source: [{ numeric: ['>>', 1] }] },
    { source: [{ unknown: 1 }] }, { $or: [{ a: ['x'] }] }, []]) {
    assert.throws(() => validate(bad), PatternError, JSON.stringify(bad));
  }
});
