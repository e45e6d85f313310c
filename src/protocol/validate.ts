/** Small type guards for validating messages on receipt (host, worker and webviews share them). */
export const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A number that is not NaN (JSON has no NaN; a NaN here means a broken sender). */
export const isNum = (v: unknown): v is number => typeof v === 'number' && !Number.isNaN(v);
export const isInt = (v: unknown): v is number => Number.isSafeInteger(v);
export const isStr = (v: unknown): v is string => typeof v === 'string';
export const isStrArray = (v: unknown): v is string[] => Array.isArray(v) && v.every(isStr);
