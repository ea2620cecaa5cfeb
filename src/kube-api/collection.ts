// The collection an informer reads, named once by an ObjectRef: the REST path its watch opens and the list
// call of the same collection, with the same label selector — so the watch and the list can never name two
// different things (a namespace in one and not the other, a selector on the list only).

import { pathOf, type ObjectRef } from './api.ts';
import type { InformerOptions } from './informer.ts';
import type { KubeConnection } from './kube.ts';

/** A custom resource's collection, cluster-wide or in `ref.namespace`, for `startInformer`. */
export function customCollection(
  connection: KubeConnection,
  ref: ObjectRef,
  labelSelector?: string,
): Pick<InformerOptions, 'path' | 'list' | 'labelSelector'> {
  const { group, version, plural, namespace } = ref;
  const selector = labelSelector === undefined ? {} : { labelSelector };
  return {
    path: pathOf(ref),
    ...selector,
    list: (page) =>
      namespace === undefined
        ? connection.custom.listClusterCustomObject({ group, version, plural, ...selector, ...page })
        : connection.custom.listNamespacedCustomObject({
            group,
            version,
            namespace,
            plural,
            ...selector,
            ...page,
          }),
  };
}
