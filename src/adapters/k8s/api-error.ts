/** An API call failed for a reason other than conflict or absence. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly what: string,
    readonly code: number | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${what}: ${code ? `HTTP ${code}: ` : ''}${message}`, options);
  }
}
