'use strict';
// CloudFormation templates for the deploy tests: a js-yaml schema with CloudFormation's short-form
// tags, and a checker of a parsed template against the CloudFormation resource specification of
// @aws-cdk/aws-service-spec (resource types, property names and types, required properties,
// GetAtt attributes) and of its own references (Ref, GetAtt, Sub, FindInMap, If, Condition).

const fs = require('fs');
const path = require('path');
const yaml = require('js-yaml');

const SRC = process.env.QFS_SOURCE_DIR || path.resolve(__dirname, '..', '..', '..', '..');
const TEMPLATE_DIR = path.join(SRC, 'deploy', 'cloudformation');
const TEMPLATES = ['centralized-hub', 'centralized-spoke', 'regional-spoke', 'single-account'];

// ---- YAML: !Tag value  ->  {"Fn::Tag": value} (or {"Ref": ...}, {"Condition": ...}) ----

const SHORT_TAGS = ['Ref', 'GetAtt', 'Sub', 'Join', 'If', 'Equals', 'Not', 'And', 'Or', 'Select', 'Split',
  'FindInMap', 'GetAZs', 'ImportValue', 'Base64', 'Condition', 'Cidr'];

function longName(tag) {
  return tag === 'Ref' || tag === 'Condition' ? tag : 'Fn::' + tag;
}

function cfnTypes() {
  const types = [];
  for (const tag of SHORT_TAGS) {
    for (const kind of ['scalar', 'sequence', 'mapping']) {
      types.push(new yaml.Type('!' + tag, {
        kind,
        construct(data) {
          if (tag === 'GetAtt' && kind === 'scalar') {
            // !GetAtt Resource.Attribute: the attribute may itself contain dots.
            const i = String(data).indexOf('.');
            return { 'Fn::GetAtt': i < 0 ? [String(data)] : [data.slice(0, i), data.slice(i + 1)] };
          }
          if (kind === 'scalar' && data === null) data = '';
          return { [longName(tag)]: data };
        },
      }));
    }
  }
  return types;
}

const CFN_SCHEMA = yaml.DEFAULT_SCHEMA.extend(cfnTypes());

function parseTemplate(text, filename) {
  return yaml.load(text, { schema: CFN_SCHEMA, filename });
}

function loadTemplate(name) {
  const file = path.join(TEMPLATE_DIR, name + '.yaml');
  const text = fs.readFileSync(file, 'utf8');
  return { name, file, text, tpl: parseTemplate(text, file) };
}

function loadAll() {
  return TEMPLATES.map(loadTemplate);
}

// ---- generic walking ----

const PSEUDO = new Set(['AWS::AccountId', 'AWS::NotificationARNs', 'AWS::NoValue', 'AWS::Partition', 'AWS::Region',
  'AWS::StackId', 'AWS::StackName', 'AWS::URLSuffix']);

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

// intrinsic returns [name, argument] when v is a single-key intrinsic function object.
function intrinsic(v) {
  if (!isPlainObject(v)) return null;
  const keys = Object.keys(v);
  if (keys.length !== 1) return null;
  const k = keys[0];
  if (k === 'Ref' || k.startsWith('Fn::')) return [k, v[k]];
  return null;
}

// subVariables lists the ${Name} and ${Resource.Attr} variables of a Fn::Sub string (not ${!Literal}).
function subVariables(str) {
  const out = [];
  const re = /\$\{([^}]*)\}/g;
  let m;
  while ((m = re.exec(str)) !== null) {
    if (m[1].startsWith('!')) continue;
    out.push(m[1].trim());
  }
  return out;
}

// ---- the resource specification ----

let specDb = null;
function spec() {
  if (!specDb) {
    const { loadAwsServiceSpecSync } = require('@aws-cdk/aws-service-spec');
    specDb = loadAwsServiceSpecSync();
  }
  return specDb;
}

function resourceSpec(type) {
  const found = spec().lookup('resource', 'cloudFormationType', 'equals', type);
  return found.length === 1 ? found[0] : null;
}

function typeDefinition(ref) {
  return spec().get('typeDefinition', ref.$ref);
}

const NUMERIC = /^-?[0-9]+(\.[0-9]+)?$/;

// checkValue validates a property value against a spec PropertyType; problems go to errs.
function checkValue(type, value, where, errs) {
  if (value === undefined) return;
  if (intrinsic(value)) return; // resolved at deploy time; its references are checked elsewhere
  switch (type.type) {
    case 'string':
      if (typeof value === 'object') errs.push(where + ': expected a string, got ' + JSON.stringify(value).slice(0, 80));
      else if (type.allowedValues && typeof value === 'string' && !type.allowedValues.includes(value)) {
        errs.push(where + ': "' + value + '" is not one of ' + type.allowedValues.join(', '));
      }
      return;
    case 'integer':
    case 'number':
      if (!(typeof value === 'number' || (typeof value === 'string' && NUMERIC.test(value)))) {
        errs.push(where + ': expected a number, got ' + JSON.stringify(value));
      } else if (type.type === 'integer' && type.allowedValues && !type.allowedValues.includes(Number(value))) {
        errs.push(where + ': ' + value + ' is not one of ' + type.allowedValues.join(', '));
      }
      return;
    case 'boolean':
      if (!(typeof value === 'boolean' || value === 'true' || value === 'false')) {
        errs.push(where + ': expected a boolean, got ' + JSON.stringify(value));
      }
      return;
    case 'json':
      if (typeof value !== 'object' && typeof value !== 'string') errs.push(where + ': expected JSON');
      return;
    case 'date-time':
    case 'null':
      return;
    case 'tag':
      if (!isPlainObject(value) || !('Key' in value) || !('Value' in value)) errs.push(where + ': expected {Key, Value}');
      return;
    case 'array':
      if (!Array.isArray(value)) {
        errs.push(where + ': expected a list');
        return;
      }
      value.forEach((v, i) => checkValue(type.element, v, where + '[' + i + ']', errs));
      return;
    case 'map':
      if (!isPlainObject(value)) {
        errs.push(where + ': expected a map');
        return;
      }
      for (const [k, v] of Object.entries(value)) checkValue(type.element, v, where + '.' + k, errs);
      return;
    case 'ref': {
      const def = typeDefinition(type.reference);
      if (!isPlainObject(value)) {
        errs.push(where + ': expected an object of type ' + def.name);
        return;
      }
      checkProperties(def.properties, value, where, errs);
      return;
    }
    case 'union': {
      const attempts = type.types.map((t) => {
        const e = [];
        checkValue(t, value, where, e);
        return e;
      });
      if (!attempts.some((e) => e.length === 0)) {
        attempts.sort((a, b) => a.length - b.length);
        errs.push(...attempts[0]);
      }
      return;
    }
    default:
      errs.push(where + ': unknown spec type ' + type.type);
  }
}

function checkProperties(props, value, where, errs) {
  for (const [name, v] of Object.entries(value)) {
    const p = props[name];
    if (!p) {
      errs.push(where + ': unknown property ' + name);
      continue;
    }
    checkValue(p.type, v, where + '.' + name, errs);
  }
  for (const [name, p] of Object.entries(props)) {
    if (p.required && !(name in value)) errs.push(where + ': required property ' + name + ' is missing');
  }
}

// ---- the template checker ----

const TOP_KEYS = new Set(['AWSTemplateFormatVersion', 'Description', 'Metadata', 'Parameters', 'Mappings', 'Conditions',
  'Rules', 'Resources', 'Outputs', 'Transform']);
const PARAM_KEYS = new Set(['Type', 'Default', 'Description', 'AllowedValues', 'AllowedPattern', 'ConstraintDescription',
  'MinLength', 'MaxLength', 'MinValue', 'MaxValue', 'NoEcho']);
const PARAM_TYPES = /^(String|Number|List<Number>|CommaDelimitedList|AWS::EC2::[A-Za-z:]+::(Id|Name)|List<AWS::EC2::[A-Za-z:]+::(Id|Name)>|AWS::SSM::Parameter::(Name|Value<.+>))$/;
const RESOURCE_KEYS = new Set(['Type', 'Properties', 'DependsOn', 'Condition', 'DeletionPolicy', 'UpdateReplacePolicy',
  'Metadata', 'CreationPolicy', 'UpdatePolicy']);
const POLICIES = new Set(['Delete', 'Retain', 'RetainExceptOnCreate', 'Snapshot']);

// checkTemplate returns every problem found in tpl (an empty list when it is clean).
function checkTemplate(tpl) {
  const errs = [];
  for (const k of Object.keys(tpl)) if (!TOP_KEYS.has(k)) errs.push('unknown top-level section ' + k);
  if (tpl.AWSTemplateFormatVersion !== '2010-09-09') errs.push('AWSTemplateFormatVersion must be "2010-09-09"');
  if (typeof tpl.Description !== 'string' || tpl.Description.length > 1024) errs.push('Description must be a string of at most 1024 characters');
  const params = tpl.Parameters || {};
  const mappings = tpl.Mappings || {};
  const conditions = tpl.Conditions || {};
  const resources = tpl.Resources || {};
  const outputs = tpl.Outputs || {};
  if (!Object.keys(resources).length) errs.push('no Resources');
  const used = { params: new Set(), conditions: new Set(), mappings: new Set() };

  for (const [name, p] of Object.entries(params)) {
    const where = 'Parameters.' + name;
    for (const k of Object.keys(p)) if (!PARAM_KEYS.has(k)) errs.push(where + ': unknown key ' + k);
    if (!PARAM_TYPES.test(p.Type || '')) errs.push(where + ': unknown parameter type ' + p.Type);
    if ('Default' in p) {
      const d = String(p.Default);
      if (p.AllowedValues && !p.AllowedValues.map(String).includes(d)) errs.push(where + ': Default is not an AllowedValue');
      if (p.AllowedPattern && !new RegExp(p.AllowedPattern).test(d)) errs.push(where + ': Default does not match AllowedPattern');
      if (p.Type === 'Number' && 'MinValue' in p && Number(d) < p.MinValue) errs.push(where + ': Default below MinValue');
      if (p.Type === 'Number' && 'MaxValue' in p && Number(d) > p.MaxValue) errs.push(where + ': Default above MaxValue');
    }
  }

  // refs walks a value; ctx.where names the place, ctx.active holds the conditions known to be true
  // there, ctx.inConditions marks the Conditions section (no resources; condition functions allowed).
  function refTarget(name, ctx) {
    if (PSEUDO.has(name)) return;
    if (name in params) {
      used.params.add(name);
      return;
    }
    if (name in resources && !ctx.inConditions) {
      const c = resources[name].Condition;
      if (c && !ctx.active.has(c)) errs.push(ctx.where + ': refers to ' + name + ', which exists only when ' + c + ' holds');
      return;
    }
    errs.push(ctx.where + ': ' + name + ' is not a parameter, resource or pseudo parameter');
  }

  function getAtt(resName, attr, ctx) {
    if (ctx.inConditions || !(resName in resources)) {
      errs.push(ctx.where + ': GetAtt of unknown resource ' + resName);
      return;
    }
    refTarget(resName, ctx);
    const rs = resourceSpec(resources[resName].Type);
    if (rs && !(attr in rs.attributes)) {
      errs.push(ctx.where + ': ' + resources[resName].Type + ' has no attribute ' + attr + ' (has ' + Object.keys(rs.attributes).join(', ') + ')');
    }
  }

  function condition(name, ctx) {
    if (!(name in conditions)) errs.push(ctx.where + ': unknown condition ' + name);
    else used.conditions.add(name);
  }

  function walk(v, ctx) {
    if (Array.isArray(v)) {
      v.forEach((x) => walk(x, ctx));
      return;
    }
    if (!isPlainObject(v)) return;
    const fn = intrinsic(v);
    if (!fn) {
      if (ctx.inConditions && Object.keys(v).length === 1 && 'Condition' in v) {
        condition(v.Condition, ctx);
        return;
      }
      for (const x of Object.values(v)) walk(x, ctx);
      return;
    }
    const [name, arg] = fn;
    switch (name) {
      case 'Ref':
        if (typeof arg !== 'string') errs.push(ctx.where + ': Ref takes a name');
        else refTarget(arg, ctx);
        return;
      case 'Fn::GetAtt':
        if (!Array.isArray(arg) || arg.length !== 2 || typeof arg[0] !== 'string') {
          errs.push(ctx.where + ': GetAtt takes [Resource, Attribute]');
          return;
        }
        if (typeof arg[1] === 'string') getAtt(arg[0], arg[1], ctx);
        else {
          refTarget(arg[0], ctx);
          walk(arg[1], ctx);
        }
        return;
      case 'Fn::Sub': {
        let str = arg;
        let vars = {};
        if (Array.isArray(arg)) {
          if (arg.length !== 2 || typeof arg[0] !== 'string' || !isPlainObject(arg[1])) {
            errs.push(ctx.where + ': Sub takes a string or [string, {variables}]');
            return;
          }
          str = arg[0];
          vars = arg[1];
          walk(vars, ctx);
        }
        if (typeof str !== 'string') {
          errs.push(ctx.where + ': Sub takes a string');
          return;
        }
        for (const name of subVariables(str)) {
          if (name in vars) continue;
          const dot = name.indexOf('.');
          if (dot > 0 && !name.startsWith('AWS::')) getAtt(name.slice(0, dot), name.slice(dot + 1), ctx);
          else refTarget(name, ctx);
        }
        return;
      }
      case 'Fn::FindInMap': {
        if (!Array.isArray(arg) || arg.length !== 3) {
          errs.push(ctx.where + ': FindInMap takes [Map, TopKey, SecondKey]');
          return;
        }
        const [map, top, second] = arg;
        if (typeof map !== 'string' || !(map in mappings)) {
          errs.push(ctx.where + ': unknown mapping ' + JSON.stringify(map));
          return;
        }
        used.mappings.add(map);
        walk(top, ctx);
        walk(second, ctx);
        // Every value the top key can take must be in the map: literal, or a Ref to a parameter
        // with AllowedValues.
        let tops = null;
        if (typeof top === 'string') tops = [top];
        else if (intrinsic(top) && intrinsic(top)[0] === 'Ref' && params[top.Ref] && params[top.Ref].AllowedValues) tops = params[top.Ref].AllowedValues.map(String);
        else errs.push(ctx.where + ': FindInMap top key must be literal or a parameter with AllowedValues');
        for (const t of tops || []) {
          if (!(t in mappings[map])) errs.push(ctx.where + ': mapping ' + map + ' has no key ' + t);
          else if (typeof second === 'string' && !(second in mappings[map][t])) errs.push(ctx.where + ': mapping ' + map + '.' + t + ' has no key ' + second);
        }
        return;
      }
      case 'Fn::If': {
        if (!Array.isArray(arg) || arg.length !== 3 || typeof arg[0] !== 'string') {
          errs.push(ctx.where + ': If takes [Condition, then, else]');
          return;
        }
        condition(arg[0], ctx);
        walk(arg[1], { ...ctx, active: new Set([...ctx.active, arg[0]]) });
        walk(arg[2], ctx);
        return;
      }
      case 'Fn::Equals':
      case 'Fn::Not':
      case 'Fn::And':
      case 'Fn::Or':
        if (!ctx.inConditions) errs.push(ctx.where + ': ' + name + ' is only allowed in Conditions');
        if (!Array.isArray(arg)) errs.push(ctx.where + ': ' + name + ' takes a list');
        if (name === 'Fn::Equals' && (!Array.isArray(arg) || arg.length !== 2)) errs.push(ctx.where + ': Equals takes two values');
        walk(arg, ctx);
        return;
      case 'Fn::Join':
        if (!Array.isArray(arg) || arg.length !== 2 || typeof arg[0] !== 'string') errs.push(ctx.where + ': Join takes [delimiter, list]');
        walk(arg, ctx);
        return;
      case 'Fn::Select':
        if (!Array.isArray(arg) || arg.length !== 2) errs.push(ctx.where + ': Select takes [index, list]');
        walk(arg, ctx);
        return;
      case 'Fn::Split':
        if (!Array.isArray(arg) || arg.length !== 2 || typeof arg[0] !== 'string') errs.push(ctx.where + ': Split takes [delimiter, string]');
        walk(arg, ctx);
        return;
      case 'Fn::GetAZs':
      case 'Fn::ImportValue':
      case 'Fn::Base64':
      case 'Fn::Cidr':
        walk(arg, ctx);
        return;
      default:
        errs.push(ctx.where + ': unknown intrinsic function ' + name);
    }
  }

  for (const [name, c] of Object.entries(conditions)) {
    walk(c, { where: 'Conditions.' + name, active: new Set(), inConditions: true });
  }

  for (const [name, r] of Object.entries(resources)) {
    const where = 'Resources.' + name;
    if (!/^[A-Za-z0-9]+$/.test(name)) errs.push(where + ': logical ids are alphanumeric');
    for (const k of Object.keys(r)) if (!RESOURCE_KEYS.has(k)) errs.push(where + ': unknown key ' + k);
    if (r.Condition !== undefined) condition(r.Condition, { where });
    for (const k of ['DeletionPolicy', 'UpdateReplacePolicy']) {
      if (r[k] !== undefined && !POLICIES.has(r[k])) errs.push(where + ': bad ' + k);
    }
    const deps = r.DependsOn === undefined ? [] : [].concat(r.DependsOn);
    for (const d of deps) if (!(d in resources)) errs.push(where + ': DependsOn unknown resource ' + d);
    const rs = resourceSpec(r.Type);
    if (!rs) {
      errs.push(where + ': unknown resource type ' + r.Type);
      continue;
    }
    checkProperties(rs.properties, r.Properties || {}, where + '.Properties', errs);
    const active = new Set(r.Condition ? [r.Condition] : []);
    walk(r.Properties || {}, { where, active });
    walk(r.Metadata || {}, { where, active });
  }

  for (const [name, o] of Object.entries(outputs)) {
    const where = 'Outputs.' + name;
    if (!('Value' in o)) errs.push(where + ': no Value');
    if (o.Condition !== undefined) condition(o.Condition, { where });
    walk(o, { where, active: new Set(o.Condition ? [o.Condition] : []) });
  }

  walk(tpl.Metadata || {}, { where: 'Metadata', active: new Set() });
  for (const p of Object.keys(params)) if (!used.params.has(p)) errs.push('Parameters.' + p + ' is never used');
  for (const c of Object.keys(conditions)) if (!used.conditions.has(c)) errs.push('Conditions.' + c + ' is never used');
  for (const m of Object.keys(mappings)) if (!used.mappings.has(m)) errs.push('Mappings.' + m + ' is never used');
  return errs;
}

// resourcesOfType lists [logicalId, resource] for every resource of one type.
function resourcesOfType(tpl, type) {
  return Object.entries(tpl.Resources || {}).filter(([, r]) => r.Type === type);
}

module.exports = {
  SRC, TEMPLATE_DIR, TEMPLATES, CFN_SCHEMA, SHORT_TAGS, parseTemplate, loadTemplate, loadAll, checkTemplate,
  intrinsic, isPlainObject, resourceSpec, resourcesOfType, subVariables, spec,
};
