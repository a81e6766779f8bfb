// The intake helper src/api/acceptUpload.ts still imports preferWaitSeconds and waitFor from here;
// they live in src/api/http/prefer.ts (cursors in http/cursor.ts, shared schemas in schemas/common.ts).
// Delete this file once it imports from there.
export { preferWaitSeconds, waitFor } from './http/prefer.js';
