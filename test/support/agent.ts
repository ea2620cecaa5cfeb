// A node agent in the test process, as the e2e suites run it: on a cluster of test/support/cluster.ts, silent,
// metrics on any free port, no flat file from this machine, and quick retries after a failed list or watch
// (the tests wait for them).

import { runAgent, type RunAgentOptions, type RunningAgent } from '../../src/agent/agent.ts';
import { silentLogger } from '../../src/log.ts';
import type { Cluster } from './cluster.ts';

export const runTestAgent = (
  cluster: Cluster,
  socketPath: string,
  options: Partial<RunAgentOptions> = {},
): Promise<RunningAgent> =>
  runAgent({
    connection: cluster.connection(),
    socketPath,
    nodeName: 'node-1',
    log: silentLogger,
    flatFilePaths: [],
    // The networks of these tests name the cluster's kubeconfig, as the flat file names the agent's.
    kubeconfig: cluster.kubeconfig,
    metricsPort: 0,
    watchBackoff: { initialMs: 100, maxMs: 1_000 },
    ...options,
  });
