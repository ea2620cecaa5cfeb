// `whereabouts-ts sandbox` (npm start): the whole system on one machine with nothing else installed — the
// embedded API server with the CRDs, simulated nodes that create and delete pods and run the real plugin
// executable for each, exactly as a container runtime would, and a live view of the pools.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeconfigFor } from '../apiserver/kubeconfig.ts';
import { startApiServer, type ApiServer } from '../apiserver/server.ts';
import { renderView, type SandboxEvent } from './view.ts';

export type SandboxOptions = {
  readonly plugin: string;
  readonly crdDirectory: string;
  readonly nodes: number;
  readonly port: number;
  /** Stop by itself after this many seconds (0: run until Ctrl-C). */
  readonly durationSeconds: number;
  /** Redraw a table in place (a terminal) or print one line per event. */
  readonly live: boolean;
  readonly write: (text: string) => void;
};

/** The networks the simulated pods attach to: a small pool that fills up, and a dual-stack one. */
const networks = [
  { name: 'storage', ipam: { range: '198.18.0.0/27', exclude: ['198.18.0.1'], gateway: '198.18.0.1' } },
  { name: 'data', ipam: { ipRanges: [{ range: '198.18.16.0/22' }, { range: '2001:db8:16::/64' }] } },
] as const;

type Pod = { readonly node: string; readonly name: string; readonly container: string };

export async function runSandbox(options: SandboxOptions): Promise<void> {
  const server: ApiServer = await startApiServer({
    crdDirectories: [options.crdDirectory],
    port: options.port,
  });
  const dir = mkdtempSync(join(tmpdir(), 'whereabouts-sandbox-'));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, kubeconfigFor(server.url, { namespace: 'kube-system' }), { mode: 0o600 });
  const events: SandboxEvent[] = [];
  const record = (event: SandboxEvent): void => {
    events.push(event);
    if (events.length > 200) events.shift();
    if (!options.live)
      options.write(
        `${event.at.toISOString()} ${event.node} ${event.verb} ${event.pod} ${event.network}: ${event.outcome}\n`,
      );
  };
  options.write(`embedded API server at ${server.url}; kubeconfig ${kubeconfig}\n`);

  const exec = (verb: 'ADD' | 'DEL', pod: Pod, network: (typeof networks)[number]): Promise<void> =>
    new Promise((resolve) => {
      const conf = {
        cniVersion: '1.1.0',
        name: network.name,
        type: 'macvlan',
        ipam: { type: 'whereabouts', kubernetes: { kubeconfig }, log_level: 'error', ...network.ipam },
      };
      const child = execFile(
        options.plugin,
        {
          env: {
            CNI_COMMAND: verb,
            CNI_CONTAINERID: pod.container,
            CNI_NETNS: `/var/run/netns/${pod.container}`,
            CNI_IFNAME: network.name === 'storage' ? 'net1' : 'net2',
            CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=sandbox;K8S_POD_NAME=${pod.name}`,
          },
        },
        (error, stdout) => {
          let outcome = 'released';
          if (error !== null)
            outcome = `error: ${(JSON.parse(stdout || '{}') as { details?: string }).details ?? error.message}`;
          else if (verb === 'ADD')
            outcome = (JSON.parse(stdout) as { ips: { address: string }[] }).ips
              .map((i) => i.address)
              .join(', ');
          record({ at: new Date(), node: pod.node, verb, pod: pod.name, network: network.name, outcome });
          resolve();
        },
      );
      child.stdin?.end(JSON.stringify(conf));
    });

  const state = { stopping: false };
  const stopped = (): boolean => state.stopping;
  const inFlight = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };
  let serial = 0;
  const running: Pod[] = [];

  /** One simulated node: starts a pod every so often and stops one now and then. */
  const node = async (name: string): Promise<void> => {
    while (!stopped()) {
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 700));
      if (stopped()) break;
      const mine = running.filter((p) => p.node === name);
      if (mine.length > 6 || (mine.length > 0 && Math.random() < 0.35)) {
        const pod = mine[Math.floor(Math.random() * mine.length)] as Pod;
        running.splice(running.indexOf(pod), 1);
        track(Promise.all(networks.map((n) => exec('DEL', pod, n))).then(() => undefined));
      } else {
        serial++;
        const pod: Pod = {
          node: name,
          name: `app-${serial}`,
          container: `sandbox${serial}${Math.random().toString(16).slice(2, 10)}`,
        };
        running.push(pod);
        track(Promise.all(networks.map((n) => exec('ADD', pod, n))).then(() => undefined));
      }
    }
  };

  const draw = () => {
    if (options.live) options.write(`\u001b[H\u001b[2J${renderView(server, events, running.length)}`);
  };
  const timer = setInterval(draw, 1000);
  const stop = new Promise<void>((resolve) => {
    const onSignal = () => {
      resolve();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    if (options.durationSeconds > 0) setTimeout(resolve, options.durationSeconds * 1000).unref();
  });
  const nodes = Array.from({ length: options.nodes }, (_, i) => node(`node-${i + 1}`));
  await stop;
  state.stopping = true;
  await Promise.all(nodes);
  await Promise.all(inFlight);
  clearInterval(timer);
  options.write(
    `${options.live ? '\n' : ''}${renderView(server, events, running.length)}stopped: ${running.length} pods left running in the pools\n`,
  );
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}
