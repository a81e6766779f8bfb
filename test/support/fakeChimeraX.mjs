#!/usr/bin/env node
// A stand-in for ChimeraX, because ChimeraX cannot be installed on the machines molvault is
// tested on. It speaks the same REST shape as `remotecontrol rest start port N json true`
// (GET /run?command=..., JSON replies with "python values", "json values", "log messages",
// "error") and understands the commands molvault's ChimeraX driver sends: version, open, save,
// close session, exit. It converts PDB ↔ mmCIF by calling gemmi and copies same-format saves.
//
// Tests steer it through the content of the file it opens:
//   FAKE_CHIMERAX_CRASH           the process dies abruptly while opening the file
//   FAKE_CHIMERAX_HANG <pidfile>  it starts a child process (writes its pid to <pidfile>) and never answers
//   FAKE_CHIMERAX_GARBAGE         save writes bytes that are not a structure
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';

const args = process.argv.slice(2);
if (args.includes('--version')) {
  console.log('UCSF ChimeraX version: 0.0.1-molvault-stand-in (fake, for tests)');
  process.exit(0);
}
const cmd = args[args.indexOf('--cmd') + 1] ?? '';
const portMatch = /remotecontrol rest start port (\d+) json true/.exec(cmd);
if (!args.includes('--nogui') || !args.includes('--offscreen') || !portMatch) {
  console.error(`fake ChimeraX: expected --nogui --offscreen --cmd "remotecontrol rest start port N json true", got ${args.join(' ')}`);
  process.exit(2);
}

let opened; // { path, format, text }
const reply = (res, error, info = []) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      'python values': [null],
      'json values': [null],
      'log messages': { info, warning: [], error: error ? [error] : [] },
      error: error ? { type: 'UserError', message: error } : null,
    }),
  );
};
const unquote = (s) => s.replace(/^"(.*)"$/, '$1').replace(/\\"/g, '"');

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname !== '/run') return reply(res, `unknown path ${url.pathname}`);
  const command = url.searchParams.get('command') ?? '';
  if (command === 'version') return reply(res, null, ['UCSF ChimeraX version: 0.0.1-molvault-stand-in']);
  if (command === 'close session') {
    opened = undefined;
    return reply(res, null);
  }
  if (command === 'exit') {
    reply(res, null);
    setTimeout(() => process.exit(0), 10);
    return;
  }
  const openMatch = /^open ("(?:[^"\\]|\\.)*"|\S+) format (\S+)$/.exec(command);
  if (openMatch) {
    const m = openMatch;
    if (opened) return reply(res, 'a model is already open: the previous job did not close its session');
    const path = unquote(m[1]);
    let text;
    try {
      text = fs.readFileSync(path, 'latin1');
    } catch (error) {
      return reply(res, `cannot open ${path}: ${error.message}`);
    }
    if (text.includes('FAKE_CHIMERAX_CRASH')) process.kill(process.pid, 'SIGKILL');
    const hang = /FAKE_CHIMERAX_HANG (\S+)/.exec(text);
    if (hang) {
      const child = spawn('sleep', ['3600'], { stdio: 'ignore' });
      fs.writeFileSync(hang[1], String(child.pid));
      return; // never answers
    }
    opened = { path, format: m[2], text };
    return reply(res, null, [`Opened ${path}`]);
  }
  const saveMatch = /^save ("(?:[^"\\]|\\.)*"|\S+) format (\S+)$/.exec(command);
  if (saveMatch) {
    const m = saveMatch;
    if (!opened) return reply(res, 'nothing is open to save');
    const path = unquote(m[1]);
    const to = m[2];
    if (opened.text.includes('FAKE_CHIMERAX_GARBAGE')) {
      fs.writeFileSync(path, 'this is not a structure\n');
      return reply(res, null);
    }
    if (to === opened.format) {
      fs.copyFileSync(opened.path, path);
      return reply(res, null);
    }
    if ((opened.format === 'pdb' && to === 'mmcif') || (opened.format === 'mmcif' && to === 'pdb')) {
      const r = spawnSync('gemmi', ['convert', `--from=${opened.format}`, `--to=${to}`, opened.path, path], { encoding: 'utf8' });
      if (r.status !== 0) return reply(res, `save failed: ${r.stderr}`);
      return reply(res, null);
    }
    return reply(res, `the stand-in cannot save ${opened.format} as ${to}`);
  }
  return reply(res, `unknown command: ${command}`);
});
server.listen(Number(portMatch[1]), '127.0.0.1', () => {
  console.log(`REST server started on host 127.0.0.1 port ${portMatch[1]}`);
});
