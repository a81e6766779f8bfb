// What a thread that scans parts of a large PDB file for a parse thread (scanHelpers.ts) runs. It
// loads only the line scan (formats/pdbScan.ts), reads the file's bytes where the parse thread put
// them (shared memory) and hands back what it found without copying it. Its entry is scanWorker.mjs
// from the sources, and the build's own scanWorker.mjs from the build.
import { parentPort } from 'node:worker_threads';
import { chunkBuffers, scanChunk } from '../formats/pdbScan.js';

const port = parentPort!;
port.on('message', ({ id, buffer, byteOffset, byteLength, from, to, prevLine, minLineLength }) => {
  let chunk: ReturnType<typeof scanChunk>;
  try {
    chunk = scanChunk(Buffer.from(buffer, byteOffset, byteLength), from, to, prevLine, minLineLength);
  } catch (error) {
    port.postMessage({ id, error: error instanceof Error ? error.message : String(error) });
    return;
  }
  port.postMessage({ id, chunk }, chunkBuffers(chunk));
});
