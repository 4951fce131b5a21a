'use strict';
// Focused Dockerfile rules on top of dockerfile-utils' linter (which checks syntax and flags, not
// practice): pinned base images, a non-root final USER, no ADD (so no ADD of URLs), apt installs
// without recommends and with their lists removed in the same layer, exec-form ENTRYPOINT, CMD and
// HEALTHCHECK, no secrets in ENV or ARG.

// parse turns a Dockerfile into [{line, keyword, args, stage}], continuation lines joined.
function parse(text) {
  const out = [];
  const lines = text.split('\n');
  let stage = -1;
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i];
    if (/^\s*(#.*)?$/.test(line)) continue;
    const start = i + 1;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      line = line.replace(/\\\s*$/, ' ');
      i++;
      if (!/^\s*#/.test(lines[i])) line += lines[i];
    }
    const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const keyword = m[1].toUpperCase();
    if (keyword === 'FROM') stage++;
    out.push({ line: start, keyword, args: m[2].trim(), stage });
  }
  return out;
}

function isExecForm(args) {
  try {
    const v = JSON.parse(args);
    return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string');
  } catch (e) {
    return false;
  }
}

// problems returns every rule the Dockerfile text breaks, as "line N: ..." strings.
function problems(text, opts) {
  const o = opts || {};
  const ins = parse(text);
  const errs = [];
  const stages = new Set();
  const lastStage = Math.max(...ins.map((x) => x.stage));
  for (const x of ins) {
    const at = 'line ' + x.line + ': ';
    switch (x.keyword) {
      case 'FROM': {
        const words = x.args.split(/\s+/).filter((w) => !w.startsWith('--'));
        const image = words[0];
        if (words[1] && words[1].toUpperCase() === 'AS') stages.add(words[2]);
        if (stages.has(image) && words[0] !== words[2]) break; // an earlier stage
        if (/@sha256:[0-9a-f]{64}$/.test(image)) break;
        const tag = /:([^/:@]+)$/.exec(image);
        if (!tag) errs.push(at + 'base image ' + image + ' has no tag');
        else if (tag[1] === 'latest') errs.push(at + 'base image ' + image + ' uses latest');
        break;
      }
      case 'ADD':
        errs.push(at + 'ADD (use COPY; never ADD a URL)' + (/https?:\/\//.test(x.args) ? ': ' + x.args : ''));
        break;
      case 'RUN': {
        const cmd = x.args;
        if (/\bapt-get\s+(-\S+\s+)*install\b/.test(cmd)) {
          if (!/--no-install-recommends/.test(cmd)) errs.push(at + 'apt-get install without --no-install-recommends');
          if (!/\s-y\b|--yes|--assume-yes/.test(cmd)) errs.push(at + 'apt-get install without -y');
        }
        if (/\bapt-get\s+update\b/.test(cmd)) {
          if (!/\bapt-get\s+(-\S+\s+)*install\b/.test(cmd)) errs.push(at + 'apt-get update in a RUN without the install');
          if (!/rm -rf \/var\/lib\/apt\/lists/.test(cmd)) errs.push(at + 'apt lists not removed in the same RUN');
        }
        if (/\bcurl\b|\bwget\b/.test(cmd)) errs.push(at + 'downloads in a RUN (only package registries are used)');
        if (/\bsudo\b/.test(cmd)) errs.push(at + 'sudo in a RUN');
        if (/^cd\s|&&\s*cd\s/.test(cmd)) errs.push(at + 'cd in a RUN (use WORKDIR)');
        break;
      }
      case 'ENTRYPOINT':
      case 'CMD':
        if (!isExecForm(x.args)) errs.push(at + x.keyword + ' is not in exec (JSON) form');
        break;
      case 'HEALTHCHECK': {
        const m = /CMD\s+(.*)$/.exec(x.args);
        if (!m || !isExecForm(m[1])) errs.push(at + 'HEALTHCHECK CMD is not in exec (JSON) form');
        break;
      }
      case 'ENV':
      case 'ARG':
        if (/(PASSWORD|SECRET|TOKEN|_KEY)\b/i.test(x.args)) errs.push(at + x.keyword + ' carries a secret: ' + x.args);
        break;
      default:
        break;
    }
  }
  const users = ins.filter((x) => x.keyword === 'USER' && x.stage === lastStage);
  if (!users.length) errs.push('the final stage has no USER (it would run as root)');
  else {
    const u = users[users.length - 1].args.split(':')[0];
    if (u === 'root' || u === '0') errs.push('the final USER is root');
  }
  if (o.healthcheck && !ins.some((x) => x.keyword === 'HEALTHCHECK' && x.stage === lastStage)) errs.push('the final stage has no HEALTHCHECK');
  return errs;
}

module.exports = { parse, problems };
