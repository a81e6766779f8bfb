// Entry of a PDB scan helper thread when molvault runs from the sources: loads the TypeScript loader
// in this thread, then runs pool/scanThread.ts. (The build makes its own scanWorker.mjs from it.)
import { register } from 'tsx/esm/api';

register();
await import('./scanThread.ts');
