// Piscina thread entry when molvault runs from the sources: loads the TypeScript loader in this
// thread, then serves pool/thread.ts. (The build makes its own worker.mjs from thread.ts.)
import { register } from 'tsx/esm/api';
import { loadMolstarWithoutElementTable } from './molstarTypes.mjs';

register();
loadMolstarWithoutElementTable();
export const { ingest, ready, parse, receive, receiveFile, diff, inspect } = await import('./thread.ts');
