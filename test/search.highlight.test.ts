import { describe, expect, it } from 'vitest';
import { highlighter } from '../src/search/highlight.js';

const TITLE = 'mouse kinase 4LR9 CRYSTAL STRUCTURE OF HUMAN TYROSINE-PROTEIN KINASE C-SRC, IN COMPLEX WITH AMP-PNP internal 4lr9.pdb kinase from Bos taurus';

describe('search highlights', () => {
  it('marks words that start with a searched word, in any case, keeping the text as written', () => {
    expect(highlighter(['lyso'], [])('Hen egg-white Lysozyme, screening-2026')).toBe('Hen egg-white <mark>Lysozyme</mark>, screening-2026');
  });

  it('marks typo corrections only as whole words', () => {
    expect(highlighter(['lysozme'], ['lysozyme'])('lysozyme lysozymes')).toBe('<mark>lysozyme</mark> lysozymes');
  });

  it('shows at most two fragments of fourteen words around the matches, with ellipses where text is left out', () => {
    const shown = highlighter(['kinase'], [])(TITLE) as string;
    expect(shown).toBe(
      'mouse <mark>kinase</mark> 4LR9 CRYSTAL STRUCTURE OF HUMAN TYROSINE-PROTEIN <mark>KINASE</mark> C-SRC, IN COMPLEX … PNP internal 4lr9.pdb <mark>kinase</mark> from Bos taurus',
    );
    const long = `${'word '.repeat(30)}target ${'word '.repeat(30)}`.trim();
    expect(highlighter(['target'], [])(long)).toBe(`… ${'word '.repeat(4)}<mark>target</mark>${' word'.repeat(9)} …`);
  });

  it('joins a fragment that continues the previous one without an ellipsis', () => {
    const text = Array.from({ length: 20 }, (_, i) => (i === 1 || i === 15 ? 'hit' : `w${i}`)).join(' ');
    expect(highlighter(['hit'], [])(text)).toBe(text.replace(/\bhit\b/g, '<mark>hit</mark>'));
  });

  it('answers nothing when no word matches, and treats terms as text, not patterns', () => {
    expect(highlighter(['absent'], [])(TITLE)).toBeUndefined();
    expect(highlighter([], [])(TITLE)).toBeUndefined();
    expect(highlighter(['c'], ['a.(b)*', 'x|y'])('axb c x|y')).toBe('axb <mark>c</mark> x|y');
  });
});
