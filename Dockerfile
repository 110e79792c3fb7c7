# Sentinel: one image for the gateway (`sentinel`) and the WAF agent (`sentinel-waf`), installed
# from the same `npm pack` tarball a user installs (docs/deploy.md).
#   docker build -t sentinel .
#   docker run -p 8080:8080 sentinel                                   # embedded default config
#   docker run -v $PWD/my.kdl:/etc/sentinel/config.kdl:ro -p 8080:8080 sentinel sentinel run -c /etc/sentinel/config.kdl
#   docker run -v /run/sentinel:/var/run/sentinel sentinel sentinel-waf --socket /var/run/sentinel/waf.sock
# Node 20 on Debian bookworm in every stage, so the re2 addon built in `deps` loads in `runtime`.
# test/integration/ship/image.test.ts carries out these steps without a Docker engine.
ARG NODE_IMAGE=node:20-bookworm
ARG NODE_SLIM_IMAGE=node:20-bookworm-slim

# --- build: all dependencies, `npm pack` (its prepack compiles dist/), the OWASP CRS -------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json README.md ./
COPY bin/ bin/
COPY scripts/ scripts/
COPY config/ config/
COPY docs/ docs/
COPY src/ src/
COPY plugins/ plugins/
COPY agents/ agents/
# The package's files (bin/, dist/, README.md, docs/) in the tarball, under a fixed name.
RUN mkdir -p /out && npm pack --pack-destination /out && mv /out/sentinel-gateway-*.tgz /out/sentinel-gateway.tgz
# Pinned release + sha256 check (the script refuses a mismatch and installs nothing).
RUN bash scripts/fetch-crs.sh --dest /out/crs

# --- deps: the tarball unpacked as /app, its production dependencies from the lockfile -----------
# (re2 compiles its addon here, where g++ and python are; package-lock.json pins every version)
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY --from=build /out/sentinel-gateway.tgz /out/
COPY package-lock.json ./
RUN tar -xzf /out/sentinel-gateway.tgz --strip-components=1 -C /app && npm ci --omit=dev --no-audit --no-fund

# --- runtime: slim Node 20, no build tools, runs as a non-root user, no shell needed -----------
FROM ${NODE_SLIM_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app /app
COPY --from=build /out/crs /usr/share/sentinel/crs
# uid/gid 10001: not root, and numeric so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# 8080 gateway HTTP, 8443 HTTPS (when the config has a TLS listener), 9091 metrics server.
EXPOSE 8080 8443 9091
STOPSIGNAL SIGTERM
# start-period: the gateway answers once built, ~20 s a worker at a tenth of a core with an in-process
# WAF (the CRS compile; docs/deploy.md, "Session 25"), so failures before 60 s do not count.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 CMD ["node", "/app/bin/healthcheck.mjs"]
# First argument: sentinel | sentinel-waf | agent-echo | agent-denylist; the rest are its flags.
ENTRYPOINT ["node", "/app/bin/entrypoint.mjs"]
CMD ["sentinel", "run"]
