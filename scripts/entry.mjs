// Resolve the entry file given to start.mjs / run.mjs to an absolute path.
// Relative paths are tried against the current directory (the package root under
// `npm start` / `npm run`) and then against INIT_CWD (where the user typed npm).
import fs from 'node:fs';
import path from 'node:path';

export function resolveEntry(file) {
  const candidates = [path.resolve(process.cwd(), file)];
  if (process.env.INIT_CWD) candidates.push(path.resolve(process.env.INIT_CWD, file));
  const found = candidates.find((p) => fs.existsSync(p) && fs.statSync(p).isFile());
  if (!found) {
    console.error(`[keyflow] entry file not found: ${file} (looked at ${[...new Set(candidates)].join(', ')})`);
    process.exit(2);
  }
  return found;
}
