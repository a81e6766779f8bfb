// Entry of a thread that scans parts of a large PDB file for a parse thread (scanHelpers.ts). It
// loads only the line scan (formats/pdbScan.ts), reads the file's bytes where the parse thread
// put them (shared memory) and hands back what it found without copying it.
import { parentPort } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { chunkBuffers, scanChunk } = await import('../formats/pdbScan.ts');

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
