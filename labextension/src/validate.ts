/**
 * Quick checks of what the user types, run on every keystroke. They mirror
 * jupyter_envs/envs/validate.py; the server checks again and has the last word.
 */

const NAME_FORBIDDEN = new Set("/ :#\\\"'<>|?*&;$`!{}()[]~%".split(''));
const PACKAGE_NAME = /^[a-z0-9_][a-z0-9_.-]*$/i;
const MAX_NAME_LENGTH = 128;
const MAX_SPEC_LENGTH = 256;

/** A problem with the user's input, or null when there is none. */
export type Problem = string | null;

/** Why an environment name would be refused, or null. */
export function checkEnvName(name: string): Problem {
  if (!name) {
    return 'A name is needed.';
  }
  if (name.length > MAX_NAME_LENGTH) {
    return `The name is longer than ${MAX_NAME_LENGTH} characters.`;
  }
  const bad = [...new Set(name)].filter(c => NAME_FORBIDDEN.has(c) || c < ' ' || c === '\x7f');
  if (bad.length) {
    return `The name may not contain ${bad.map(c => (c === ' ' ? 'spaces' : `'${c}'`)).join(', ')}.`;
  }
  if (name.startsWith('-') || name.startsWith('.')) {
    return "The name may not start with '-' or '.'.";
  }
  if (['base', 'root'].includes(name.toLowerCase())) {
    return `'${name}' is reserved for the root environment.`;
  }
  return null;
}

/** Split what the user typed into package specs (one per line, or separated by commas-free blanks). */
export function parseSpecs(text: string): string[] {
  const specs: string[] = [];
  for (const line of text.split(/\n/)) {
    const trimmed = line.replace(/#.*$/, '').trim();
    if (!trimmed) {
      continue;
    }
    // "numpy>=1.20 pandas" on one line is two specs; "numpy >=1.20" is one (an operator follows).
    const parts = trimmed.split(/\s+/);
    for (const part of parts) {
      if (specs.length && /^[<>=!~]/.test(part)) {
        specs[specs.length - 1] += part;
      } else {
        specs.push(part);
      }
    }
  }
  return specs;
}

/** Why one package spec would be refused, or null. */
export function checkSpec(spec: string): Problem {
  if (!spec) {
    return 'A package spec is empty.';
  }
  if (spec.length > MAX_SPEC_LENGTH) {
    return `'${spec.slice(0, 40)}…' is longer than ${MAX_SPEC_LENGTH} characters.`;
  }
  if (spec.startsWith('-')) {
    return `'${spec}' looks like a command-line option, not a package.`;
  }
  if (/[;`$&\\\x00-\x1f]/.test(spec)) {
    return `'${spec}' contains characters a package spec never has.`;
  }
  let name = spec;
  const channelSep = name.indexOf('::');
  if (channelSep >= 0) {
    name = name.slice(channelSep + 2);
  }
  name = name.split(/[\s<>=!~[@]/)[0];
  if (!PACKAGE_NAME.test(name)) {
    return `'${spec}' does not start with a package name.`;
  }
  return null;
}

/** The first problem among several specs, or null. */
export function checkSpecs(specs: string[], allowEmpty = false): Problem {
  if (!specs.length) {
    return allowEmpty ? null : 'Add at least one package, e.g. python=3.11.';
  }
  for (const spec of specs) {
    const problem = checkSpec(spec);
    if (problem) {
      return problem;
    }
  }
  return null;
}

/** The package name of a spec (no channel, version or build). */
export function specName(spec: string): string {
  const noChannel = spec.includes('::') ? spec.slice(spec.indexOf('::') + 2) : spec;
  return noChannel.split(/[\s<>=!~[@]/)[0].toLowerCase();
}

/** Whether the specs ask for a Python kernel (ipykernel). */
export function hasKernelSpec(specs: string[]): boolean {
  return specs.some(s => specName(s) === 'ipykernel');
}

/** Guess whether uploaded text is a lock file (conda-lock / rattler) rather than an environment.yml. */
export function looksLikeLockfile(text: string): boolean {
  return /^\s*version:\s*\d+\s*$/m.test(text) && /^\s*(environments|packages):/m.test(text);
}
