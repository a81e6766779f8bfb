import type { UploadError } from '../../entities/Upload.js';
import { extensionHint, formatsCompatible } from '../../formats/sniff.js';
import { FORMAT_LABELS, FORMATS, type Format, type Problem, type ValidationReport } from '../../formats/types.js';

export type FormatDecision = { format: Format; warning?: Problem } | { error: UploadError };

/** The content decides; an explicit format must agree with it, a file extension only earns a warning. */
export function resolveFormat(filename: string, declared: Format | null, detected: Format | undefined, sniffReason?: string): FormatDecision {
  if (!detected) {
    return {
      error: {
        status: 415,
        code: 'unsupported_format',
        message: sniffReason ?? 'molvault does not recognise this file format.',
        details: { supported: FORMATS },
      },
    };
  }
  // A session is stored unopened, so a file that only claims to be one must not slip through as something else.
  const claimsSession = declared === 'cxs' || (!declared && extensionHint(filename) === 'cxs');
  if (claimsSession && detected !== 'cxs') {
    return {
      error: {
        status: 415,
        code: 'not_a_session',
        message: `The file is called a ChimeraX session (${declared ? 'format cxs' : '.cxs'}), but its content is ${FORMAT_LABELS[detected]}, not a session; upload it under its own extension or without format=cxs.`,
        details: { declared: 'cxs', detected },
      },
    };
  }
  if (declared && !formatsCompatible(declared, detected)) {
    return {
      error: {
        status: 415,
        code: 'format_mismatch',
        message: `The upload says the file is ${FORMAT_LABELS[declared]}, but its content is ${FORMAT_LABELS[detected]}.`,
        details: { declared, detected },
      },
    };
  }
  const fromName = extensionHint(filename);
  if (fromName && !formatsCompatible(fromName, detected)) {
    return {
      format: detected,
      warning: {
        code: 'extension_mismatch',
        message: `The file name ends like ${FORMAT_LABELS[fromName]}, but the content is ${FORMAT_LABELS[detected]}; it was read as ${FORMAT_LABELS[detected]}.`,
      },
    };
  }
  return { format: detected };
}

/** The report ingest leaves on an upload: its format warning, if any, until validation writes the whole one. */
export function ingestValidation(warning: Problem | undefined): ValidationReport | null {
  return warning ? { problems: [], warnings: [warning], parser: 'sniff', parseMs: 0 } : null;
}

/** A new structure's name when the upload gives none: its file name without extensions. */
export function defaultName(filename: string): string {
  return filename.replace(/\.(gz|bz2)$/i, '').replace(/\.[^.]+$/, '') || filename;
}
