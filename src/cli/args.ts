/**
 * A small, strict option parser: every command declares its options; anything else is a
 * usage error that names the command and how to get help.
 */
export type OptType = 'string' | 'number' | 'int' | 'boolean';

export interface OptSpec {
  type: OptType;
  help: string;
  default?: string | number | boolean;
  /** A string option that may be given more than once: the values joined by newlines. */
  repeat?: boolean;
}

export type OptSpecs = Record<string, OptSpec>;
export type ParsedOpts = Record<string, string | number | boolean | undefined>;

export class UsageError extends Error {}

export function parseArgs(command: string, argv: string[], specs: OptSpecs): { opts: ParsedOpts; positional: string[] } {
  const opts: ParsedOpts = {};
  const positional: string[] = [];
  for (const [k, s] of Object.entries(specs)) if (s.default !== undefined) opts[k] = s.default;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      // the end of the options: the rest is positional (rlhf submit -- sft --data ...)
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    let [key, value] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    const spec = specs[key];
    if (!spec) throw new UsageError(`unknown option --${key} for "rlhf ${command}" (see rlhf ${command} --help)`);
    if (spec.type === 'boolean') {
      opts[key] = value === undefined ? true : value !== 'false';
      continue;
    }
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new UsageError(`--${key} needs a value (see rlhf ${command} --help)`);
    }
    if (spec.type === 'number' || spec.type === 'int') {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n) || (spec.type === 'int' && !Number.isInteger(n))) {
        throw new UsageError(`--${key} must be ${spec.type === 'int' ? 'a whole number' : 'a number'}, got "${value}"`);
      }
      opts[key] = n;
    } else opts[key] = spec.repeat && opts[key] !== undefined && opts[key] !== spec.default ? `${opts[key]}\n${value}` : value;
  }
  return { opts, positional };
}

export function helpText(usage: string, summary: string, specs: OptSpecs): string {
  const rows = Object.entries(specs).map(([k, s]) => {
    const name = `--${k}${s.type === 'boolean' ? '' : ` <${s.type === 'string' ? 'value' : s.type}>`}`;
    const def = s.default !== undefined && s.type !== 'boolean' ? ` (default ${s.default})` : '';
    return `  ${name.padEnd(26)} ${s.help}${def}`;
  });
  return `${usage}\n\n${summary}\n\nOptions:\n${rows.join('\n')}\n`;
}
