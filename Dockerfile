# syntax=docker/dockerfile:1
# Heartline's one image: `heartline controller`, `heartline agent` and the tools.
# The agent runs as `heartline-netd --exec heartline agent ...` (netd is PID 1 and fences the
# node's VIPs if the agent dies: docs/fence.md); deploy/base does that. Build with
#   docker build -t heartline:0.1.0 .
ARG NODE_VERSION=20

# ---------------------------------------------------------------------------- build
FROM node:${NODE_VERSION}-bookworm AS build
WORKDIR /src

# heartline-netd: one C file, libc and Linux headers only (node:*-bookworm ships gcc, make,
# libc6-dev and binutils). A hardened static PIE; `make check` proves it with readelf/nm.
COPY native/Makefile native/heartline-netd.c native/check-hardening.sh native/
RUN make -C native check

# Dependencies before sources, so that a source change reuses this layer.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
# tsc -p tsconfig.build.json -> dist/src/**, then drop devDependencies (typescript, jest, tsx...).
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

# ---------------------------------------------------------------------------- runtime
FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production \
    HEARTLINE_HOME=/opt/heartline \
    HEARTLINE_NETD=/usr/local/bin/heartline-netd
WORKDIR /opt/heartline
# package.json carries "type": "module", which the compiled ESM needs.
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules/ node_modules/
COPY --from=build /src/dist/src/ dist/src/
COPY --from=build --chmod=0755 /src/native/build/heartline-netd /usr/local/bin/heartline-netd
COPY --chmod=0755 deploy/image/heartline /usr/local/bin/heartline
# The same CLI as a kubectl plugin: kubectl heartline status | move | standby | unstandby.
RUN ln -s heartline /usr/local/bin/kubectl-heartline

# Non-root by default (the controller and the tools). The agent's pod overrides this with
# runAsUser 0 and only NET_ADMIN + NET_RAW: see docs/deploy.md "Security contexts".
USER 65532:65532
ENTRYPOINT ["heartline"]
CMD ["--help"]
