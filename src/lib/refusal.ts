/**
 * A refusal that says what went wrong the way the API answers it: an HTTP status, a stable code and
 * a sentence a scientist can act on, with optional details. Services raise their own subclasses
 * (a draft refused, an export that cannot be written); the API's ApiError is one too.
 */
export class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
