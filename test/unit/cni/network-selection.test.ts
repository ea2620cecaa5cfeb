// Which network-selection element an attachment is: the one Multus named the interface after — by its
// `interface`, else `net<i+1>` for the element at position i — and the IPAMClaim it references.

import { elementFor, selectionElements } from '../../../src/cni/network-selection.ts';

describe('network-selection elements', () => {
  test('the JSON form, with interfaces and claim references', () => {
    expect(
      selectionElements(
        JSON.stringify([
          { name: 'a', namespace: 'ns', interface: 'eth9' },
          { name: 'b', 'ipam-claim-reference': 'vm.b', mac: '02:00:00:00:00:01' },
        ]),
      ),
    ).toEqual([
      { name: 'a', namespace: 'ns', interface: 'eth9' },
      { name: 'b', ipamClaimReference: 'vm.b' },
    ]);
  });

  test("Multus' short form: [namespace/]name[@interface], comma-separated", () => {
    expect(selectionElements('ns/a@eth9, b')).toEqual([
      { name: 'a', namespace: 'ns', interface: 'eth9' },
      { name: 'b' },
    ]);
    expect(selectionElements('')).toEqual([]);
  });

  test('a malformed annotation is no elements to go by', () => {
    expect(selectionElements('[{"name": 1}]')).toBeUndefined();
    expect(selectionElements('[{')).toBeUndefined();
    expect(selectionElements('{"name": "a"}')).toBeUndefined();
  });

  test('the element of an interface: by its name, else by position as Multus numbers them', () => {
    const elements = [
      { name: 'a' },
      { name: 'b', interface: 'eth9', ipamClaimReference: 'vm.b' },
      { name: 'c', ipamClaimReference: 'vm.c' },
    ];
    expect(elementFor(elements, 'net1')?.name).toBe('a');
    expect(elementFor(elements, 'eth9')?.name).toBe('b');
    expect(elementFor(elements, 'net3')?.name).toBe('c');
    // net2 is the position of `b`, which asked for eth9: no element is net2.
    expect(elementFor(elements, 'net2')).toBeUndefined();
    expect(elementFor(elements, 'net4')).toBeUndefined();
  });
});
