// Mol*'s model/types.js fills, as it is first imported, a table of every one- to three-letter
// alphanumeric string with its upper case (_esCache, 242,234 entries), which ElementSymbol looks a
// symbol up in before calling toUpperCase() itself: for every key the table holds that same upper
// case, so an empty table gives the same answers. Building it costs each parse thread that loads
// Mol*'s model code a noticeable share of an import's CPU, and every major GC of the thread marks
// it again. The module is loaded with the table left empty: from the sources by the load hook
// below (each parse thread, worker.mjs), in the build by an esbuild plugin (bin/build.mjs). The
// text replaced is Mol* 5.11.0's; a Mol* whose text differs is loaded as it is
// (test/pool.modules.test.ts notices).
import { registerHooks } from 'node:module';

/** The module's path (a file URL or a file name). */
export const MOLSTAR_TYPES = /[\\/]molstar[\\/]lib[\\/]mol-model[\\/]structure[\\/]model[\\/]types\.js$/;

const TABLE = /const _esCache = \(function \(\) \{[\s\S]*?\n\}\(\)\);\n/;

/** types.js's source with the table's construction replaced by an empty table. */
export function withoutElementTable(source) {
  return source.replace(TABLE, 'const _esCache = Object.create(null);\n');
}

/** The load hook: types.js's source rewritten, every other module as the next hook loads it. */
export function loadWithoutElementTable(url, context, nextLoad) {
  const loaded = nextLoad(url, context);
  if (!MOLSTAR_TYPES.test(url) || loaded.source == null) return loaded;
  return { ...loaded, source: withoutElementTable(Buffer.from(loaded.source).toString('utf8')) };
}

/** Installs the hook in this thread (before anything imports Mol*'s model code). */
export function loadMolstarWithoutElementTable() {
  registerHooks({ load: loadWithoutElementTable });
}
