/** A byte range of a stored file, both ends included. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * The one range a download answers: `bytes=a-b`, `bytes=a-` or `bytes=-n`. Several ranges, a range
 * that does not parse, or an `If-Range` naming another version of the file are answered with the
 * whole file (undefined), as RFC 9110 allows.
 */
export function parseRange(header: string, size: number, ifRange: string, etag: string): ByteRange | 'unsatisfiable' | undefined {
  if (!header || (ifRange && ifRange !== etag)) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, from, to] = match;
  if (from === '' && to === '') return undefined;
  let start: number;
  let end: number;
  if (from === '') {
    const suffix = Number(to);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(from);
    end = to === '' ? size - 1 : Math.min(Number(to), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}
