import type { ActorDefinition, ActorSystem, ActorSystemOptions } from '../../index';
import { createActorSystem } from '../../index';
import { cleanupNamespace, redisUrl, uniqueNamespace } from './redis';

/**
 * Systems created by a spec, closed and their namespaces deleted afterwards.
 * Call `track()` in a describe block.
 */
export function systems() {
  const open: ActorSystem[] = [];
  const namespaces = new Set<string>();
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
    for (const ns of namespaces) await cleanupNamespace(redisUrl(), ns);
    namespaces.clear();
  });
  return {
    async create(actors: ActorDefinition[], opts: Partial<ActorSystemOptions> = {}): Promise<ActorSystem> {
      const namespace = opts.namespace ?? uniqueNamespace();
      namespaces.add(namespace);
      const system = await createActorSystem({ redis: redisUrl(), namespace, partitions: 4, leaseTtlMs: 2_000, actors, ...opts });
      open.push(system);
      return system;
    },
  };
}

/** Collect outputs from the start until `count` arrived or `timeoutMs` passed. */
export async function collectOutputs(system: ActorSystem, count: number, timeoutMs = 10_000) {
  const out: Awaited<ReturnType<AsyncIterator<unknown>['next']>>['value'][] = [];
  const it = system.outputs({ from: 'start' })[Symbol.asyncIterator]();
  const deadline = Date.now() + timeoutMs;
  while (out.length < count && Date.now() < deadline) {
    let timer: NodeJS.Timeout | undefined;
    const next = await Promise.race([it.next(), new Promise<null>((r) => (timer = setTimeout(() => r(null), Math.max(1, deadline - Date.now()))))]);
    clearTimeout(timer);
    if (!next || next.done) break;
    out.push(next.value);
  }
  await it.return?.();
  return out as import('../../index').PositionedOutput[];
}
