// A cluster's kubelets, simulated on one machine: each node runs its pods' sandbox operations with a cap on
// the plugin processes it runs at once, as a kubelet on its own cores would, scaled to the cores this
// machine has. Starting every process of a burst at once measures the machine, not the IPAM: on 2 cores,
// 1000 Node processes at once spend minutes starting and hit the plugin's deadline. The tests and the
// benchmarks that run plugins "from N nodes" use this one shape and print it.

import { availableParallelism } from 'node:os';

export type Nodes = {
  readonly count: number;
  /** Plugin processes one node runs at once. */
  readonly perNode: number;
};

/**
 * Plugin processes at once per core of this machine: a plugin spends most of its time waiting on the API
 * server, so a core keeps several busy (a kubelet on a node of its own runs its pods' sandboxes in parallel).
 */
const processesPerCore = 8;

export const cores = availableParallelism();

/** `count` simulated nodes sharing this machine's cores. */
export function simulatedNodes(count: number): Nodes {
  return { count, perNode: Math.max(1, Math.round((cores * processesPerCore) / count)) };
}

export const describeNodes = (nodes: Nodes): string =>
  `${nodes.count} simulated nodes, at most ${nodes.perNode} plugin processes at once on each (${cores} cores here)`;

/**
 * Runs `work(job, node)` for every job in [0, jobs): job j on node j % nodes.count, each node running at most
 * `perNode` jobs at once (the next starts when one ends). The results, in job order.
 */
export async function onNodes<R>(
  nodes: Nodes,
  jobs: number,
  work: (job: number, node: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(jobs);
  await Promise.all(
    Array.from({ length: nodes.count }, async (_, node) => {
      const mine = Array.from(
        { length: Math.ceil((jobs - node) / nodes.count) },
        (_, k) => node + k * nodes.count,
      );
      let next = 0;
      const worker = async (): Promise<void> => {
        for (let k = next++; k < mine.length; k = next++) {
          const job = mine[k] as number;
          results[job] = await work(job, node);
        }
      };
      await Promise.all(Array.from({ length: Math.min(nodes.perNode, mine.length) }, worker));
    }),
  );
  return results;
}
