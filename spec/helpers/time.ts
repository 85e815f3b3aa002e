/** Resolve after `ms` milliseconds of real time. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
