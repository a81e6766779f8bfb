// The intake helpers (src/api/acceptUpload.ts, acceptImport.ts) still import checkedMetadata from here;
// it lives in src/api/metadata.ts. Delete this file once they import it from there.
export { checkedMetadata } from '../../metadata.js';
