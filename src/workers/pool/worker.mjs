// Piscina thread entry. Registers the TypeScript loader in this thread, then serves tasks.ts.
import { register } from 'tsx/esm/api';

register();
const tasks = await import('./tasks.ts');

export const ingest = (task) => tasks.ingest(task);
export const parse = (task) => tasks.parse(task);
export const diff = (task) => tasks.diff(task);
