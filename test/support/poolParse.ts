/**
 * A fresh process with a fresh CpuPool that parses the files given (path:format pairs) and prints
 * each outcome's ok, parser and atom count as a JSON line. Run with moduleTrace.mjs to see which
 * modules its threads loaded (test/pool.modules.test.ts). `--warm N`: a warm pool of N threads;
 * `--pool <file>`: the CpuPool of a build (its app/cpuPool.mjs) instead of the sources'.
 */
const args = process.argv.slice(2);
const option = (name: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? args.splice(at, 2)[1] : undefined;
};
const warm = Number(option('--warm') ?? 0);
const poolModule = option('--pool');
const files = args;
const { CpuPool } = (poolModule ? await import(poolModule) : await import('../../src/pool/cpuPool.js')) as typeof import('../../src/pool/cpuPool.js');
const pool = new CpuPool(Math.max(warm, 1), 120_000, 2048, 0, 0, warm > 0);
try {
  await pool.warmed;
  for (const spec of files) {
    const at = spec.lastIndexOf(':');
    const outcome = await pool.parse({ path: spec.slice(0, at), format: spec.slice(at + 1) as never });
    process.stdout.write(
      `${JSON.stringify({ file: spec, ok: outcome.ok, parser: outcome.report.parser, atoms: outcome.ok ? outcome.summary.atoms : undefined })}\n`,
    );
  }
} finally {
  await pool.close();
}
