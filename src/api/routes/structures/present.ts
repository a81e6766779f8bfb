// The intake helper src/api/acceptUpload.ts still imports presentStructure from here; presenters
// live in src/api/presenters/. Delete this file once it imports from there.
export { presentStructure } from '../../presenters/structures.js';
