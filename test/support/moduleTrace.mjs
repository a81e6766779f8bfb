// Loaded with `node --import` (which every worker thread runs too): each thread writes the URL of
// every module it loads to its own file, MODULE_TRACE_DIR/<threadId>. For tests that check which
// modules a pool thread loads (test/pool.modules.test.ts).
import { register } from 'node:module';
import path from 'node:path';
import { threadId } from 'node:worker_threads';

const dir = process.env.MODULE_TRACE_DIR;
if (dir) register(new URL('./moduleTraceHooks.mjs', import.meta.url), { data: { file: path.join(dir, String(threadId)) } });
