// Types of molstarTypes.mjs (plain JavaScript: bin/build.mjs imports it too).
export declare const MOLSTAR_TYPES: RegExp;
export declare function withoutElementTable(source: string): string;
export declare function loadWithoutElementTable(
  url: string,
  context: object,
  nextLoad: (url: string, context: object) => { format?: string | null; source?: string | ArrayBuffer | ArrayBufferView | null },
): { format?: string | null; source?: string | ArrayBuffer | ArrayBufferView | null };
export declare function loadMolstarWithoutElementTable(): void;
