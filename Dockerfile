# presence-hub container image.
#
#   docker build -t presence-hub .
#   docker run -p 8080:8080 -e PRESENCE_HUB_JWT_SECRET=change-me presence-hub
#   docker network create presence                                   # cluster mode:
#   docker run -d --name redis --network presence redis:7 redis-server --appendonly yes
#   docker run -p 8080:8080 --network presence -e PRESENCE_HUB_JWT_SECRET=... \
#       -e PRESENCE_HUB_REDIS_URL=redis://redis:6379/ presence-hub
#
# Every flag is an environment variable PRESENCE_HUB_<NAME> (README,
# "Configuration"); the image sets only what a container needs.

FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
# The workspace names the load tool as a member: cargo reads its manifest
# even when it builds only the hub, so it is copied (with a stub first).
COPY Cargo.toml Cargo.lock ./
COPY loadtest/Cargo.toml ./loadtest/
RUN mkdir -p src loadtest/src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > loadtest/src/main.rs \
    && cargo build --release --locked -p presence-hub 2>/dev/null || true
COPY src ./src
COPY loadtest/src ./loadtest/src
# The client library is embedded in the binary (src/client_lib.rs).
COPY clients/js/src ./clients/js/src
# The protocol's shared schemas are embedded in /openapi.json (src/api/openapi.rs).
COPY protocol/schemas/common.schema.json ./protocol/schemas/
RUN touch src/main.rs src/lib.rs && cargo build --release --locked -p presence-hub --bin presence-hub

FROM debian:bookworm-slim
# ca-certificates: the system's roots, which verify a managed Redis's TLS
# certificate when no --redis-tls-ca is given.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin hub
COPY --from=build /src/target/release/presence-hub /usr/local/bin/presence-hub
USER hub
# /metrics on its own port (README "Web security"): 8080 is what gets
# published; 9090 is reached only on the container network (Prometheus),
# and the public port answers 404 for /metrics. Not EXPOSEd, so `-P` does
# not publish it either.
ENV PRESENCE_HUB_LISTEN=0.0.0.0:8080 \
    PRESENCE_HUB_METRICS_LISTEN=0.0.0.0:9090 \
    PRESENCE_HUB_LOG_FORMAT=json
EXPOSE 8080
# The binary probes itself: no shell tools in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["presence-hub", "healthcheck", "--path", "/healthz"]
# SIGTERM drains: clients are told to reconnect elsewhere (close 1012).
STOPSIGNAL SIGTERM
ENTRYPOINT ["presence-hub"]
