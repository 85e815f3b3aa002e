/**
 * The applications built on keyflow's public API (they import only from the
 * root index.ts), and what other code — specs, the bench, scripts — may use of
 * them. Each app's entry points run through `npm start` / `npm run …`.
 */
export { account, accountMachine, type AccountContext, type AccountEvent } from './bank/account-machine';
export { runBankExample, parseBankArgs, type BankExampleOptions } from './bank/example';
export { startService, type RideService, type ServiceHooks } from './ride-matching/service';
export { runService, runSimulator } from './ride-matching/cli';
export * as fraudDetection from './fraud-detection';
export { runEnrichmentExample, plantMachine } from './examples/enrichment';
export { mulberry32 } from './lib/random';
