// Kubernetes schemas for rendered objects, from the @kubernetes-models packages: their validate() (the
// OpenAPI schema of each kind: types, required fields, formats, enums), and their TypeScript types, whose
// excess-property check finds what validate() lets through — a field the kind does not have, which the API
// server would drop or, with strict field validation, refuse (a misspelt or mis-indented key).

import { join } from 'node:path';
import ts from 'typescript';
import type { K8sObject } from './render.ts';
import { root } from './render.ts';

/** Where the model of a kind lives: the package and the module path of its group and version. */
function modulePathOf(apiVersion: string): string[] {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (group === 'monitoring.coreos.com')
    return [`@kubernetes-models/prometheus-operator/${group}/${version ?? ''}`];
  return [
    group === '' ? `kubernetes-models/${version ?? ''}` : `kubernetes-models/${group}/${version ?? ''}`,
  ];
}

type Model = { validate(): void };
type ModelClass = new (data: unknown) => Model;

/** The model class of a kind, or undefined when no package has one. */
export async function modelOf(o: K8sObject): Promise<{ module: string; model: ModelClass } | undefined> {
  for (const base of modulePathOf(o.apiVersion)) {
    const module = `${base}/${o.kind}`;
    try {
      const loaded = (await import(module)) as Record<string, unknown>;
      const model = loaded[o.kind];
      if (typeof model === 'function') return { module, model: model as ModelClass };
    } catch {
      // not in this package
    }
  }
  return undefined;
}

/** The schema errors of one object, as `path: message` lines; empty when it is valid. */
export async function schemaErrors(o: K8sObject): Promise<string[]> {
  const found = await modelOf(o);
  if (found === undefined) return [`no schema for ${o.apiVersion} ${o.kind}`];
  try {
    new found.model(o).validate();
    return [];
  } catch (e) {
    const errors = (e as { errors?: { instancePath: string; message?: string }[] }).errors;
    if (errors === undefined) return [String(e)];
    return errors.map((x) => `${x.instancePath === '' ? '/' : x.instancePath}: ${x.message ?? 'invalid'}`);
  }
}

/** The JSON path of a property in the generated literal (`spec.template.spec.containers[0].image`). */
function pathOf(node: ts.Node): string {
  const parts: string[] = [];
  for (let n: ts.Node = node; !ts.isVariableDeclaration(n); n = n.parent) {
    if (ts.isPropertyAssignment(n)) parts.unshift(n.name.getText().replace(/^"|"$/g, ''));
    else if (ts.isArrayLiteralExpression(n.parent))
      parts.unshift(`[${n.parent.elements.indexOf(n as ts.Expression)}]`);
  }
  return parts.join('.').replace(/\.\[/g, '[');
}

/** Whether `type` (or, for a union, one of its members) has the property, or takes any key. */
function hasProperty(checker: ts.TypeChecker, type: ts.Type, name: string): boolean {
  const members = type.isUnion() ? type.types : [type];
  return members.some(
    (t) =>
      checker.getPropertyOfType(t, name) !== undefined ||
      checker.getIndexInfoOfType(t, ts.IndexKind.String) !== undefined ||
      // The models write "any JSON" (JSONSchemaPropsOrBool and the like) as an empty interface.
      checker.getPropertiesOfType(t).length === 0 ||
      (t.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) !== 0,
  );
}

/**
 * Checks every object against its kind's TypeScript interface (`I<Kind>`), written as an object literal:
 * each key at every depth must be a field of the type there, and each value of that field's type. Returns
 * the problems per object index.
 */
export async function unknownFieldErrors(objects: readonly K8sObject[]): Promise<Map<number, string[]>> {
  const fileName = join(root, 'test', 'deploy', '__rendered_manifests__.ts');
  const declarations: string[] = [];
  for (const [i, o] of objects.entries()) {
    const found = await modelOf(o);
    if (found === undefined) continue;
    declarations.push(
      `import type { I${o.kind} as T${i} } from '${found.module}';\nexport const o${i}: T${i} = ${JSON.stringify(o)};`,
    );
  }
  const source = declarations.join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const fileExists = host.fileExists.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.fileExists = (name) => name === fileName || fileExists(name);
  host.getSourceFile = (name, version, onError, create) =>
    name === fileName
      ? ts.createSourceFile(name, source, version, true)
      : getSourceFile(name, version, onError, create);
  const program = ts.createProgram([fileName], options, host);
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(fileName);
  if (file === undefined) throw new Error('the generated file was not compiled');

  const errors = new Map<number, string[]>();
  const objectIndexOf = (node: ts.Node): number => {
    let n = node;
    while (!ts.isVariableDeclaration(n)) n = n.parent;
    return Number(n.name.getText().slice(1));
  };
  const report = (node: ts.Node, problem: string) => {
    const index = objectIndexOf(node);
    errors.set(index, [...(errors.get(index) ?? []), problem]);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isObjectLiteralExpression(node)) {
      const type = checker.getContextualType(node);
      for (const property of node.properties) {
        const name = property.name?.getText().replace(/^"|"$/g, '') ?? '';
        if (type !== undefined && !hasProperty(checker, type.getNonNullableType(), name))
          report(property, `${pathOf(property)}: no such field in ${checker.typeToString(type)}`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  // Type errors (a string where a number belongs, a missing required field) — unknown keys are reported above.
  for (const d of program.getSemanticDiagnostics(file)) {
    if (d.start === undefined || d.code === 2353 || d.code === 2561) continue;
    let node: ts.Node = (
      ts as unknown as { getTokenAtPosition(f: ts.SourceFile, p: number): ts.Node }
    ).getTokenAtPosition(file, d.start);
    while (!ts.isPropertyAssignment(node) && !ts.isVariableDeclaration(node)) node = node.parent;
    report(
      node,
      `${ts.isVariableDeclaration(node) ? '(object)' : pathOf(node)}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`,
    );
  }
  return errors;
}
