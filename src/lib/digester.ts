import { createHash } from 'node:crypto';
import { Transform, type TransformOptions } from 'node:stream';

/**
 * Passes bytes through while hashing and counting them. `flush`, if given, sees the result when the
 * stream ends and may fail it (a blob whose bytes do not match its name, say).
 */
export function digester(flush?: (result: { sha256: string; bytes: number }) => Error | undefined) {
  const hash = createHash('sha256');
  let bytes = 0;
  let digest: string | undefined;
  const result = () => {
    digest ??= hash.digest('hex');
    return { sha256: digest, bytes };
  };
  const options: TransformOptions = {
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  };
  if (flush) options.flush = (done) => done(flush(result()) ?? null);
  return { stream: new Transform(options), result };
}
