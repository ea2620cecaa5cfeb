// Every page of a list. The API server hands a long list out in pages (`limit` and a `continue` token); every
// reader of a whole collection — the store, GC, the slice controller, the operator commands — walks them here,
// so that a failure on any page is one classified error naming what was listed.

import { fail, ok, type Result } from '../errors.ts';
import type { KubeApi, ListOptions, Obj, ObjectRef } from '../kube-api/api.ts';
import { classify, type StoreError } from './errors.ts';

/** Objects per page unless a reader says otherwise (pools, up to 1.5 MiB each, ask for fewer). */
export const defaultPageSize = 500;

/** Hands every item of every page to `visit` as its page arrives; `what` names the list in errors. */
export async function eachPage(
  api: KubeApi,
  ref: ObjectRef,
  what: string,
  visit: (item: Obj) => void,
  options: Omit<ListOptions, 'continue'> = {},
): Promise<Result<void, StoreError>> {
  let token: string | undefined;
  do {
    const page = await api.list(ref, {
      limit: defaultPageSize,
      ...options,
      ...(token === undefined ? {} : { continue: token }),
    });
    if (!page.ok) return fail(classify(page.error, what, api.server));
    for (const item of page.value.items) visit(item);
    token = page.value.continue;
  } while (token !== undefined);
  return ok(undefined);
}

/** Every item of every page. */
export async function listEvery(
  api: KubeApi,
  ref: ObjectRef,
  what: string,
  options: Omit<ListOptions, 'continue'> = {},
): Promise<Result<Obj[], StoreError>> {
  const items: Obj[] = [];
  const listed = await eachPage(api, ref, what, (item) => items.push(item), options);
  return listed.ok ? ok(items) : listed;
}
