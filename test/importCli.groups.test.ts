/**
 * How `molvault import` cuts a folder into import requests: the server starts storing an import's
 * files only once its request has ended, so the first requests are small and grow.
 */
import { describe, expect, it } from 'vitest';
import { groupFiles, type LocalFile } from '../src/cli/import.js';

const MB = 1024 ** 2;
const files = (sizes: number[]): LocalFile[] => sizes.map((size, i) => ({ name: `f${i}`, path: `/nowhere/f${i}`, size }));
const shape = (groups: LocalFile[][]) => groups.map((group) => group.map((file) => file.name));

describe('groupFiles', () => {
  it('keeps the first group under the first cap and doubles the cap for each next group', () => {
    // 1 MB files: 4 under 4 MB, 8 under 8 MB, then the rest under 16 MB.
    const groups = groupFiles(files(Array(20).fill(MB)), 1000, 4 * MB);
    expect(groups.map((group) => group.length)).toEqual([4, 8, 8]);
    expect(shape(groups).flat()).toEqual(files(Array(20).fill(MB)).map((file) => file.name));
  });

  it('puts a file larger than the cap in a group of its own, and counts files as well as bytes', () => {
    expect(groupFiles(files([10 * MB, MB, MB]), 1000, 4 * MB).map((group) => group.length)).toEqual([1, 2]);
    expect(groupFiles(files(Array(7).fill(1)), 3, 4 * MB).map((group) => group.length)).toEqual([3, 3, 1]);
  });

  it('without a first cap, groups by file count alone (up to the per-request byte limit)', () => {
    expect(groupFiles(files(Array(5).fill(100 * MB)), 2).map((group) => group.length)).toEqual([2, 2, 1]);
  });
});
