/** An error with a stable code, an HTTP status and a sentence a scientist can act on. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const notFound = (what: string) => new ApiError(404, 'not_found', `No ${what} with that id exists, or it is not yours.`);
export const conflict = (message: string, details?: Record<string, unknown>) => new ApiError(409, 'conflict', message, details);
