import v8 from 'node:v8';
import vm from 'node:vm';

let gc: (() => void) | undefined;

/** A full garbage collection now: V8's gc(), exposed at the first call (no --expose-gc on the command line). */
export function fullGc(): void {
  if (!gc) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as () => void;
  }
  gc();
}
