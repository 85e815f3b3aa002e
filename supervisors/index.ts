/** Supervision: restart policies (intensity, backoff) and the errors that steer them. */
export { TerminalActorError } from './errors';
export { KeySupervisor, type Directive, type FailureSeverity } from './key-supervisor';
export {
  resolveRestartPolicy,
  backoffMs,
  RestartIntensity,
  type RestartPolicy,
  type SupervisionOptions,
  type OnExhausted,
} from './restart-policy';
