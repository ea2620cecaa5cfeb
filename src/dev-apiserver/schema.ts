// Validation and pruning of custom resources against the structural OpenAPI v3 schema of their CRD: the
// subset that CRDs like ours use (type, properties, required, additionalProperties, items). Unknown fields
// are pruned as the API server prunes them; a violation is a 422 Invalid with the field path.

import type { Cause } from './status.ts';

export type Schema = {
  readonly type?: string;
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: Schema | boolean;
  readonly items?: Schema;
  readonly 'x-kubernetes-preserve-unknown-fields'?: boolean;
};

const typeOf = (value: unknown): string =>
  value === null
    ? 'null'
    : Array.isArray(value)
      ? 'array'
      : typeof value === 'number'
        ? Number.isInteger(value)
          ? 'integer'
          : 'number'
        : typeof value;

const typeMatches = (expected: string, actual: string): boolean =>
  expected === actual || (expected === 'number' && actual === 'integer');

/** Validates `value` in place, deleting unknown fields; returns the violations found. */
export function validateAndPrune(
  schema: Schema,
  value: unknown,
  path: string,
  causes: Cause[] = [],
): Cause[] {
  if (schema.type !== undefined && !typeMatches(schema.type, typeOf(value))) {
    causes.push({
      field: path,
      message: `Invalid value: "${typeOf(value)}": ${path} in body must be of type ${schema.type}: "${typeOf(value)}"`,
    });
    return causes;
  }
  if (Array.isArray(value)) {
    if (schema.items !== undefined)
      value.forEach((item, i) => validateAndPrune(schema.items as Schema, item, `${path}[${i}]`, causes));
    return causes;
  }
  if (typeof value !== 'object' || value === null) return causes;
  const object = value as Record<string, unknown>;
  for (const key of schema.required ?? []) {
    if (!(key in object)) causes.push({ field: `${path}.${key}`, message: 'Required value' });
  }
  for (const [key, child] of Object.entries(object)) {
    const property = schema.properties?.[key];
    if (property !== undefined) validateAndPrune(property, child, `${path}.${key}`, causes);
    else if (typeof schema.additionalProperties === 'object')
      validateAndPrune(schema.additionalProperties, child, `${path}.${key}`, causes);
    else if (
      schema.properties !== undefined &&
      schema.additionalProperties !== true &&
      schema['x-kubernetes-preserve-unknown-fields'] !== true
    ) {
      Reflect.deleteProperty(object, key);
    }
  }
  return causes;
}
