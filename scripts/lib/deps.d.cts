// Types for ./deps.cjs (hand-written; keep in sync).

export interface DepsPlan {
  /** 'install': `npm install` (package-lock.json missing or out of step with package.json); 'ci': `npm ci`. */
  action: 'install' | 'ci';
  reason: string;
}

export declare const REQUIRED_BINS: readonly string[];
/** What node_modules needs in order to match package.json + package-lock.json; null when it does. */
export declare function depsPlan(root: string): DepsPlan | null;
