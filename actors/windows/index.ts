/** Event-time and count windows: a pure operator for any machine's context, and a ready-made machine. */
export { InvalidWindowItemError } from './errors';
export { windowOperator, type WindowOperator, type WindowOperatorOptions, type WindowState, type WindowResult, type WindowLate, type WindowItem, type WindowStep, type OpenWindow, type RetainedItem } from './operator';
export { windowedAggregate, type WindowedAggregateOptions, type WindowedEvent } from './windowed-aggregate';
export { MAX_WINDOWS_PER_ITEM, type WindowSpec } from './window-spec';
export type { AggregateSpec, BuiltInAggregate, CustomAggregate } from './aggregates';
