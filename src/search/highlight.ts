/** Words shown per fragment, and fragments per highlight (as ts_headline's MaxWords and MaxFragments did). */
const FRAGMENT_WORDS = 14;
const MAX_FRAGMENTS = 2;
/** Words shown before a match, so a fragment reads as context around it. */
const LEAD_WORDS = 4;
const WORD = /[\p{L}\p{N}]+/gu;

/** Escapes what a `u`-flag RegExp treats as syntax (and nothing else: other escapes are errors there). */
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/**
 * A highlighter for one search: up to two fragments of a text around the words the search matched,
 * matches wrapped in <mark>, joined by " … " (and "…" where text is left out at either end). A word
 * matches when it starts with one of `prefixes` (the searched words) or is one of `exact` (their typo
 * corrections), ignoring case; the highlighter answers undefined when no word matches. Done here
 * rather than by ts_headline, which re-parses each text in Postgres at ten times the cost.
 */
export function highlighter(prefixes: readonly string[], exact: readonly string[]): (text: string) => string | undefined {
  const alternatives = [...prefixes.map((p) => `${escapeRegExp(p)}.*`), ...exact.map((e) => escapeRegExp(e))];
  if (alternatives.length === 0) return () => undefined;
  const matches = new RegExp(`^(?:${alternatives.join('|')})$`, 'iu');
  // Only a word that starts as a term does can match: the rest are not tested (when every term
  // starts with an ASCII character, whose case folds only to ASCII in ASCII text).
  const firstCodes = new Set<number>();
  for (const term of [...prefixes, ...exact]) firstCodes.add(term.charCodeAt(0) > 0x7f ? -1 : lowerAscii(term.charCodeAt(0)));
  const candidate = firstCodes.has(-1) ? () => true : (code: number) => firstCodes.has(lowerAscii(code));
  return (text) => fragments(text, asciiWords(text, matches, candidate) ?? unicodeWords(text, matches));
}

interface Word {
  start: number;
  end: number;
  match: boolean;
}

const lowerAscii = (code: number) => (code >= 65 && code <= 90 ? code + 32 : code);

/** The words of a text (runs of letters and digits), each tested against `matches`. */
function unicodeWords(text: string, matches: RegExp): Word[] {
  const words: Word[] = [];
  // exec in a loop: twice as fast as matchAll's iterator here, and this runs for every hit shown.
  const word = new RegExp(WORD);
  for (let found = word.exec(text); found; found = word.exec(text)) {
    words.push({ start: found.index, end: found.index + found[0].length, match: matches.test(found[0]) });
  }
  return words;
}

/**
 * The same words as {@link unicodeWords} finds, for an ASCII text, cut out by character codes (a
 * third of the cost of the Unicode expression, measured); undefined when the text is not ASCII.
 */
export function asciiWords(text: string, matches: RegExp, candidate: (firstCode: number) => boolean): Word[] | undefined {
  const words: Word[] = [];
  let start = -1;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 32;
    if (c > 0x7f) return undefined;
    const letter = lowerAscii(c);
    if ((c >= 48 && c <= 57) || (letter >= 97 && letter <= 122)) {
      if (start < 0) start = i;
    } else if (start >= 0) {
      words.push({ start, end: i, match: candidate(text.charCodeAt(start)) && matches.test(text.slice(start, i)) });
      start = -1;
    }
  }
  return words;
}

function fragments(text: string, words: Word[]): string | undefined {
  const shown: [first: number, last: number][] = [];
  for (let i = 0; i < words.length && shown.length < MAX_FRAGMENTS; i++) {
    if (!words[i].match) continue;
    const previous = shown[shown.length - 1];
    if (previous && i <= previous[1]) continue;
    const first = Math.max(previous ? previous[1] + 1 : 0, i - LEAD_WORDS);
    const last = Math.min(words.length - 1, first + FRAGMENT_WORDS - 1);
    shown.push([first, last]);
  }
  if (shown.length === 0) return undefined;
  let out = shown[0][0] > 0 ? '… ' : '';
  for (const [n, [first, last]] of shown.entries()) {
    if (n > 0) {
      const before = shown[n - 1][1];
      // A fragment that continues the previous one is joined by the text between them, not an ellipsis.
      out += first === before + 1 ? text.slice(words[before].end, words[first].start) : ' … ';
    }
    let at = words[first].start;
    for (let i = first; i <= last; i++) {
      const { start, end, match } = words[i];
      if (!match) continue;
      out += `${text.slice(at, start)}<mark>${text.slice(start, end)}</mark>`;
      at = end;
    }
    out += text.slice(at, words[last].end);
  }
  return shown[shown.length - 1][1] < words.length - 1 ? `${out} …` : out;
}
