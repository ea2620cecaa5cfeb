# syntax=docker/dockerfile:1
# One image for every component: the agent, the GC, the exporter and the operator CLI are
# /usr/local/bin/whereabouts-ts (also under the kubectl plugin name kubectl-whereabouts); the CNI plugin the
# agent installs onto each node is /usr/local/lib/whereabouts-ts/whereabouts (the forwarder), with the
# TypeScript plugin it falls back to beside it (whereabouts-ts-plugin). docs/install.md.
#
#   docker build -t ghcr.io/whereabouts-ts/whereabouts-ts:0.1.0 .

# Build: the plugin (a single executable with its own Node.js), the forwarder the runtime runs as
# `whereabouts` (Go, static: forwarder/) and the command-line bundle.
FROM node:24-bookworm AS build
# The Go toolchain, for the forwarder (`npm run build` builds it; without Go it would not).
COPY --from=golang:1.26-bookworm /usr/local/go /usr/local/go
ENV PATH=/usr/local/go/bin:$PATH
WORKDIR /src
COPY package.json package-lock.json ./
# `npm install` with the lockfile installs exactly the locked versions; `npm ci` refuses this lockfile, which
# lists only the platform builds of native packages that the project's registry serves (see .ci/run).
RUN npm install --no-audit --no-fund
COPY tsconfig.json ./
COPY cni-plugin/ cni-plugin/
COPY src/ src/
COPY forwarder/ forwarder/
RUN npm run build

# Run: Node.js and nothing else (no shell, no package manager).
FROM gcr.io/distroless/nodejs24-debian12:nonroot
COPY --from=build /src/dist/whereabouts-ts.mjs /usr/local/lib/whereabouts-ts/whereabouts-ts.mjs
COPY --from=build /src/dist/cli-chunks/ /usr/local/lib/whereabouts-ts/cli-chunks/
COPY --from=build /src/dist/whereabouts /usr/local/lib/whereabouts-ts/whereabouts
COPY --from=build /src/dist/whereabouts-ts-plugin /usr/local/lib/whereabouts-ts/whereabouts-ts-plugin
COPY --chmod=755 deploy/image/whereabouts-ts /usr/local/bin/whereabouts-ts
COPY --chmod=755 deploy/image/whereabouts-ts /usr/local/bin/kubectl-whereabouts
# Every component runs as this unprivileged user but the agent, whose DaemonSet runs it as root to write
# the host's CNI directories.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/whereabouts-ts"]
