/** The fraud-detection worker: what other code (specs, bench, users of the programmatic API) may use. */
export { createFraudDetector, RulesMismatchError, DEFAULT_NAMESPACE, type FraudDetector, type FraudDetectorOptions, type AccountView, type PositionedFraudOutput } from './detector';
export { ACCOUNT_ACTOR_TYPE, accountActor, createAccountMachine, type AccountStatus, type AccountContext, type FraudOutput, type FraudLate, type FraudStatusChange } from './account-machine';
export { RULES, createScorer, type FraudAlert, type RuleName, type RulesState } from './rules';
export { DEFAULT_RULES, resolveRules, applySetting, InvalidRulesError, type RulesConfig, type RulesOverrides } from './config';
export { InvalidTransactionError, parseTransactionLine, parseStreamEntry, toTransaction, type Transaction } from './transaction';
export { generate, resolveGeneratorOptions, FRAUD_PATTERNS, GENERATOR_DEFAULTS, type GeneratorOptions, type GeneratedData, type Incident, type FraudPattern } from './generator';
export { evaluateAlerts, evaluationRows, readIncidents, type Evaluation, type EvaluationRow } from './evaluator';
export { AlertFile, readAlerts } from './alerts-file';
export { runInput, type InputRunOptions } from './run';
export { runStream, type StreamRunOptions } from './run-stream';
export { StreamConsumer, type StreamConsumerOptions } from './stream-input';
export { FraudMetrics } from './metrics';
export { formatSummary, table, type RunSummary } from './report';
export { welfordAdd, welfordStddev, emptyWelford, type Welford } from './welford';
export { distanceKm } from './geo';
