// Piscina thread entry. Registers the TypeScript loader in this thread, then serves tasks.ts.
import { register } from 'tsx/esm/api';

register();
const tasks = await import('./tasks.ts');

export const ingest = (task) => tasks.ingest(task);
export const parse = (task) => tasks.parse(task);
export const diff = (task) => tasks.diff(task);
// Loaded on first use, so threads that only ingest and parse start as fast as before.
export const inspect = async (task) => (await import('../../engines/inspect.ts')).inspect(task);
