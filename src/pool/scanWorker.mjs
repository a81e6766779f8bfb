// Entry of a thread that scans parts of a large PDB file for a parse thread (scanHelpers.ts). It
// loads only the line scan (formats/pdbScan.ts), reads the file's bytes where the parse thread
// put them (shared memory) and hands back what it found without copying it.
import { existsSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

// In a build (bin/build.mjs) the modules beside this file are JavaScript; in src/ tsx loads the TypeScript.
const ext = existsSync(new URL('../formats/pdbScan.js', import.meta.url)) ? '.js' : '.ts';
if (ext === '.ts') (await import('tsx/esm/api')).register();
const { chunkBuffers, scanChunk } = await import(`../formats/pdbScan${ext}`);

parentPort.on('message', ({ id, buffer, byteOffset, byteLength, from, to, prevLine, minLineLength }) => {
  let chunk;
  try {
    chunk = scanChunk(Buffer.from(buffer, byteOffset, byteLength), from, to, prevLine, minLineLength);
  } catch (error) {
    parentPort.postMessage({ id, error: error instanceof Error ? error.message : String(error) });
    return;
  }
  parentPort.postMessage({ id, chunk }, chunkBuffers(chunk));
});
