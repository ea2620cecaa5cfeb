// The labels of node slice pools: valid label values for any node or network name (hashed when the name is
// not one), and a selector that picks exactly one node's pools.

import { matches, parseSelector, type Selector } from '../../../src/dev-apiserver/selectors.ts';
import {
  hasLabels,
  labelValue,
  networkLabel,
  nodeLabel,
  nodeSelector,
  slicePoolLabels,
} from '../../../src/codecs/pool-labels.ts';

/** Kubernetes' rule for a label value (apimachinery validation.IsValidLabelValue). */
const isLabelValue = (v: string) => v.length <= 63 && /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v);

const longNode = `${'a'.repeat(62)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.example`; // 253

test.each([
  ['node-1', 'node-1'],
  ['ip-10-0-0-1.eu-west-1.compute.internal', 'ip-10-0-0-1.eu-west-1.compute.internal'],
  ['A_b.c-9', 'A_b.c-9'],
  ['x'.repeat(63), 'x'.repeat(63)],
])('a name that is a label value is its own value: %s', (name, value) => {
  expect(labelValue(name)).toBe(value);
});

test.each([
  ['64 characters', 'n'.repeat(64)],
  ['a 253-character node name', longNode],
  ['a leading dash', '-node'],
  ['a trailing dot', 'node.'],
  ['a colon and a slash', 'blue:net/1'],
  ['non-ASCII', 'nœud-1'],
  ['only characters a value cannot hold', '///'],
])('a name with %s gets a valid, hashed value', (_, name) => {
  const value = labelValue(name);
  expect(isLabelValue(value)).toBe(true);
  expect(value).toMatch(/(^|-)[0-9a-f]{16}$/);
  expect(labelValue(name)).toBe(value); // deterministic
});

test('a hashed value keeps a readable prefix of the name, and tells names with one prefix apart', () => {
  expect(longNode.length).toBe(253);
  const value = labelValue(longNode);
  expect(value).toHaveLength(63);
  expect(value.startsWith('a'.repeat(46))).toBe(true);
  const other = `${longNode.slice(0, -1)}f`;
  expect(labelValue(other)).not.toBe(value);
  expect(labelValue(other).slice(0, 46)).toBe(value.slice(0, 46));
  // The hash is the SHA-256 of the whole name: a fixed vector, so that the agent and the plugin of any
  // version agree.
  expect(labelValue('n'.repeat(64))).toBe(`${'n'.repeat(46)}-ce068a195ab380a8`);
  expect(labelValue('///')).toMatch(/^[0-9a-f]{16}$/);
  expect(labelValue('blue:net/1')).toMatch(/^blue-net-1-[0-9a-f]{16}$/);
});

test('a slice pool is labelled with its node and its NodeSlicePool', () => {
  expect(slicePoolLabels('node-1', 'fast')).toEqual({
    'whereabouts-ts.io/node': 'node-1',
    'whereabouts-ts.io/network': 'fast',
  });
  const labels = slicePoolLabels(longNode, 'fast-2001-db8---64');
  expect(labels[nodeLabel]).toBe(labelValue(longNode));
  expect(labels[networkLabel]).toBe('fast-2001-db8---64');
  expect(Object.values(labels).every(isLabelValue)).toBe(true);
});

test("the node selector picks that node's slice pools of every network, and no other pool", () => {
  expect(nodeSelector('node-1')).toBe('whereabouts-ts.io/node=node-1');
  const select = (node: string): Selector => {
    const parsed = parseSelector(nodeSelector(node));
    if (typeof parsed === 'string') throw new Error(parsed);
    return parsed;
  };
  const pools: Record<string, Record<string, string>> = {
    'fast-node-1-10.0.0.0-24': slicePoolLabels('node-1', 'fast'),
    'slow-node-1-10.1.0.0-24': slicePoolLabels('node-1', 'slow'),
    'fast-node-10-10.0.1.0-24': slicePoolLabels('node-10', 'fast'),
    'fast-long-10.0.2.0-24': slicePoolLabels(longNode, 'fast'),
    'shared-10.2.0.0-16': {},
    'other-10.3.0.0-16': { team: 'node-1' },
  };
  const picked = (node: string) =>
    Object.entries(pools)
      .filter(([, labels]) => matches(select(node), (k) => labels[k]))
      .map(([name]) => name);
  expect(picked('node-1')).toEqual(['fast-node-1-10.0.0.0-24', 'slow-node-1-10.1.0.0-24']);
  expect(picked(longNode)).toEqual(['fast-long-10.0.2.0-24']);
  expect(picked('node-2')).toEqual([]);
});

test('hasLabels: every wanted label with its value, whatever else the pool carries', () => {
  const wanted = slicePoolLabels('node-1', 'fast');
  expect(hasLabels({ ...wanted, team: 'a' }, wanted)).toBe(true);
  expect(hasLabels({}, wanted)).toBe(false);
  expect(hasLabels({ ...wanted, [nodeLabel]: 'node-2' }, wanted)).toBe(false);
});
