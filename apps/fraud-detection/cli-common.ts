/** What the three command-line entries (cli.ts, generate.ts, evaluate.ts) share. */
import path from 'node:path';
import { CommanderError, InvalidArgumentError, type Command } from 'commander';
import { NAMESPACE_PATTERN } from '../../index';

/** A path as the user typed it: relative to where `npm run` was typed (INIT_CWD), not the package root. */
export function userPath(p: string): string {
  return path.resolve(process.env.INIT_CWD ?? process.cwd(), p);
}

export function intArg(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

export function numberArg(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`expected a number from ${min} to ${max}`);
    return n;
  };
}

export function namespaceArg(value: string): string {
  if (!NAMESPACE_PATTERN.test(value)) throw new InvalidArgumentError('expected [a-z][a-z0-9_-]* (at most 64 characters)');
  return value;
}

/** The Redis of `npm run` (scripts/run.mjs sets REDIS_URL to a private server unless one is given). */
export function redisUrl(): string {
  return process.env.REDIS_URL || 'redis://127.0.0.1:6379';
}

/** An AbortSignal for SIGINT/SIGTERM; a second signal exits at once. */
export function shutdownSignal(): AbortSignal {
  const controller = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (controller.signal.aborted) process.exit(sig === 'SIGINT' ? 130 : 143);
      process.stderr.write(`[fraud] ${sig}: stopping (again to exit at once)\n`);
      controller.abort(sig);
    });
  }
  return controller.signal;
}

/**
 * Run a commander program: usage errors exit 2, --help/--version 0, a failed
 * action 1 with its message (no stack for errors that have a `code`).
 */
export function runProgram(program: Command, argv = process.argv): void {
  const override = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.commands.forEach(override);
  };
  override(program);
  program.parseAsync(argv).then(
    () => process.exit(process.exitCode ?? 0),
    (err: unknown) => {
      if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
      const e = err instanceof Error ? err : new Error(String(err));
      process.stderr.write(`${'code' in e ? `${e.name}: ${e.message}` : (e.stack ?? e.message)}\n`);
      process.exit(1);
    },
  );
}
