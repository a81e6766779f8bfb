import { Refusal } from '../lib/refusal.js';

/** An error with a stable code, an HTTP status and a sentence a scientist can act on. */
export class ApiError extends Refusal {}

export const notFound = (what: string) => new ApiError(404, 'not_found', `No ${what} with that id exists, or it is not yours.`);
export const conflict = (message: string, details?: Record<string, unknown>) => new ApiError(409, 'conflict', message, details);
