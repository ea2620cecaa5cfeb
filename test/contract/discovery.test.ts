// The discovery documents kubectl reads before anything else (src/dev-apiserver/discovery.ts), checked against
// the embedded server and a real kube-apiserver alike: the fields kubectl uses to resolve `ippools`,
// `net-attach-def` or `po` to a resource must be what the real server says, or kubectl against
// `whereabouts-ts apiserver` would behave differently from kubectl against a cluster.

import { onEveryServer, type Cluster } from '../support/cluster.ts';

type Resource = {
  name: string;
  singularName: string;
  namespaced: boolean;
  kind: string;
  verbs: string[];
  shortNames?: string[];
};

onEveryServer((start) => {
  let cluster: Cluster;
  beforeEach(async () => {
    cluster = await start();
  });
  afterEach(async () => {
    await cluster.close();
  });

  const get = async (path: string): Promise<Record<string, unknown>> => {
    const answer = await cluster.request('GET', path);
    expect(answer.status).toBe(200);
    return answer.body as Record<string, unknown>;
  };

  test('/version, /api and /apis name the versions and groups, the whereabouts group preferring v1alpha1', async () => {
    expect((await get('/version')).major).toBe('1');
    const api = await get('/api');
    expect(api.kind).toBe('APIVersions');
    expect(api.versions).toEqual(['v1']);
    const apis = (await get('/apis')) as {
      kind: string;
      groups: { name: string; preferredVersion: unknown }[];
    };
    expect(apis.kind).toBe('APIGroupList');
    expect(apis.groups.find((g) => g.name === 'whereabouts.cni.cncf.io')).toEqual({
      name: 'whereabouts.cni.cncf.io',
      versions: [{ groupVersion: 'whereabouts.cni.cncf.io/v1alpha1', version: 'v1alpha1' }],
      preferredVersion: { groupVersion: 'whereabouts.cni.cncf.io/v1alpha1', version: 'v1alpha1' },
    });
    expect(apis.groups.map((g) => g.name)).toContain('coordination.k8s.io');
  });

  test('the resource lists: names, singular names, scope, kinds, short names and the verbs kubectl needs', async () => {
    const pick = ({ name, singularName, namespaced, kind, shortNames }: Resource) => ({
      name,
      singularName,
      namespaced,
      kind,
      shortNames,
    });
    const whereabouts = (await get('/apis/whereabouts.cni.cncf.io/v1alpha1')) as {
      groupVersion: string;
      resources: Resource[];
    };
    expect(whereabouts.groupVersion).toBe('whereabouts.cni.cncf.io/v1alpha1');
    const ippools = whereabouts.resources.find((r) => r.name === 'ippools') as Resource;
    expect(pick(ippools)).toEqual({
      name: 'ippools',
      singularName: 'ippool',
      namespaced: true,
      kind: 'IPPool',
      shortNames: undefined,
    });
    expect(ippools.verbs).toEqual(
      expect.arrayContaining(['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']),
    );
    expect(whereabouts.resources.map((r) => r.name)).toEqual(
      expect.arrayContaining(['ippools', 'overlappingrangeipreservations', 'nodeslicepools']),
    );

    const core = (await get('/api/v1')) as { resources: Resource[] };
    const pods = core.resources.find((r) => r.name === 'pods') as Resource;
    expect(pick(pods)).toEqual({
      name: 'pods',
      singularName: 'pod',
      namespaced: true,
      kind: 'Pod',
      shortNames: ['po'],
    });
    expect(core.resources.find((r) => r.name === 'pods/status')).toMatchObject({
      kind: 'Pod',
      namespaced: true,
    });
    expect(pick(core.resources.find((r) => r.name === 'nodes') as Resource)).toEqual({
      name: 'nodes',
      singularName: 'node',
      namespaced: false,
      kind: 'Node',
      shortNames: ['no'],
    });
  });

  test('a group or version not served is 404', async () => {
    expect((await cluster.request('GET', '/apis/example.com')).status).toBe(404);
    expect((await cluster.request('GET', '/apis/whereabouts.cni.cncf.io/v9')).status).toBe(404);
  });
});
