# Sentinel: one image for the gateway (`sentinel`) and the WAF agent (`sentinel-waf`).
#   docker build -t sentinel .
#   docker run -p 8080:8080 sentinel                                   # embedded default config
#   docker run -v $PWD/my.kdl:/etc/sentinel/config.kdl:ro -p 8080:8080 sentinel sentinel run -c /etc/sentinel/config.kdl
#   docker run -v /run/sentinel:/var/run/sentinel sentinel sentinel-waf --socket /var/run/sentinel/waf.sock
# See docs/deploy.md. Node 20 on Debian bookworm in every stage, so the re2 addon built in `deps`
# loads in `runtime`.
ARG NODE_IMAGE=node:20-bookworm
ARG NODE_SLIM_IMAGE=node:20-bookworm-slim

# --- build: all dependencies, compile to dist/, fetch and verify the OWASP CRS -------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin/ bin/
COPY scripts/ scripts/
COPY config/ config/
COPY src/ src/
COPY plugins/ plugins/
COPY agents/ agents/
RUN npm run build
# Pinned release + sha256 check (the script refuses a mismatch and installs nothing).
RUN bash scripts/fetch-crs.sh --dest /out/crs

# --- deps: production dependencies only (re2 compiles its addon here, where g++ and python are) -
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# --- runtime: slim Node 20, no build tools, runs as a non-root user, no shell needed -----------
FROM ${NODE_SLIM_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/bin ./bin
COPY --from=build /src/dist ./dist
COPY --from=build /out/crs /usr/share/sentinel/crs
# uid/gid 10001: not root, and numeric so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# 8080 gateway HTTP, 8443 HTTPS (when the config has a TLS listener), 9091 metrics server.
EXPOSE 8080 8443 9091
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["node", "/app/bin/healthcheck.mjs"]
# First argument: sentinel | sentinel-waf | agent-echo | agent-denylist; the rest are its flags.
ENTRYPOINT ["node", "/app/bin/entrypoint.mjs"]
CMD ["sentinel", "run"]
