'use strict';
// Reading the commands `make ... DRY_RUN=1` prints: one shell command a line, '#' lines are notes.
// words() splits a line as the shell would for the quoting qfs-deploy.sh uses (bare words, '...',
// "..." with backslash escapes, and "${Name}" placeholders kept as written).

function words(line) {
  const out = [];
  let cur = null;
  let i = 0;
  while (i < line.length) {
    const c = line[i];
    if (c === ' ' || c === '\t') {
      if (cur !== null) out.push(cur);
      cur = null;
      i++;
    } else if (c === "'") {
      const j = line.indexOf("'", i + 1);
      if (j < 0) throw new Error('unterminated single quote: ' + line);
      cur = (cur || '') + line.slice(i + 1, j);
      i = j + 1;
    } else if (c === '"') {
      cur = cur || '';
      i++;
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\' && '"\\$`'.includes(line[i + 1])) {
          cur += line[i + 1];
          i += 2;
        } else cur += line[i++];
      }
      if (line[i] !== '"') throw new Error('unterminated double quote: ' + line);
      i++;
    } else if (c === '\\') {
      cur = (cur || '') + line[i + 1];
      i += 2;
    } else {
      cur = (cur || '') + c;
      i++;
    }
  }
  if (cur !== null) out.push(cur);
  return out;
}

// commands turns dry-run output into [{line, assign, argv}] (pipelines give one entry per part);
// "VAR=$(cmd ...)" lines give {assign: 'VAR', argv: [cmd, ...]}.
function commands(text) {
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=\$\((.*)\)$/.exec(line);
    if (m) {
      out.push({ line, assign: m[1], argv: words(m[2]) });
      continue;
    }
    for (const part of line.split(' | ')) out.push({ line, assign: null, argv: words(part) });
  }
  return out;
}

// option returns the value after --name in argv (undefined when absent); options() every value
// up to the next --option.
function option(argv, name) {
  const i = argv.indexOf(name);
  return i < 0 ? undefined : argv[i + 1];
}

function options(argv, name) {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const out = [];
  for (let j = i + 1; j < argv.length && !argv[j].startsWith('--'); j++) out.push(argv[j]);
  return out;
}

module.exports = { words, commands, option, options };
