/** Where every operation and failure is written; the extension's is the "DFS" output channel. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string, error?: unknown): void;
}

/** The message of anything thrown, with its DfsError code where it has one. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' && error.name === 'DfsError' ? `${error.message} [${code}]` : error.message;
  }
  return String(error);
}
