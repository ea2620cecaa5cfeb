// A page of a list (`kind: …List`) as the API server answers it — from our HTTP client as JSON, from
// client-node's list calls as typed models (core kinds, whose list metadata says `_continue`) or JSON (custom
// resources) — decoded once: its items, the token of the next page, and the resourceVersion a watch starts
// from. Never fails: items that are not objects are left out, and a page without items has none.

import { arrayAt, isObject, objectAt, stringAt, type JsonObject } from './decode.ts';

export type DecodedList = {
  readonly items: JsonObject[];
  /** The next page's token; absent on the last page. */
  readonly continue?: string;
  readonly resourceVersion?: string;
};

export function decodeList(answer: unknown): DecodedList {
  const metadata = objectAt(answer, 'metadata');
  const next = stringAt(metadata, '_continue') ?? stringAt(metadata, 'continue');
  const resourceVersion = stringAt(metadata, 'resourceVersion');
  return {
    items: (arrayAt(answer, 'items') ?? []).filter(isObject),
    ...(next === undefined || next === '' ? {} : { continue: next }),
    ...(resourceVersion === undefined ? {} : { resourceVersion }),
  };
}
