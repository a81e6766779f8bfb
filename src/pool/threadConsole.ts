// Mol*'s readers print what they skip (a stray CIF token, a bad MOL value) with console.log: a
// mutated file would put megabytes of its own text, raw, into the process's log. Until the thread's
// logger takes console over (thread.ts), each such line goes to stderr as one short JSON record, so
// logs stay JSON whatever a file holds. Imported first by thread.ts, so it runs before the rest loads.
const quoted = (args: unknown[]) =>
  args
    .map((a) => (typeof a === 'string' ? a : String(a)))
    .join(' ')
    .slice(0, 300);
for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
  console[level] = (...args: unknown[]) => {
    process.stderr.write(`${JSON.stringify({ level: level === 'error' ? 50 : 40, time: Date.now(), msg: 'parser message', text: quoted(args) })}\n`);
  };
}
