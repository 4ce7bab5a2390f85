# syntax=docker/dockerfile:1
# Kindred in a container: built from this repository, run as an unprivileged user, with
# the shipped model inside. See docs/operations.md for how to run it (and compose.yaml
# for Kindred beside Postgres).

# --- build -----------------------------------------------------------------------
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin kindred \
 && strip target/release/kindred

# --- run -------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/kindred --create-home kindred \
 && chmod 0700 /var/lib/kindred
COPY --from=build /src/target/release/kindred /usr/local/bin/kindred
COPY --from=build /src/models/kindred-esconv-small /opt/kindred/model
COPY --from=build /src/README.md /opt/kindred/README.md
ENV KINDRED__STORAGE__DATA_DIR=/var/lib/kindred \
    KINDRED__MODEL__DIR=/opt/kindred/model \
    KINDRED__OPERATIONS__LISTEN=0.0.0.0:9187 \
    KINDRED__LOGGING__FORMAT=json
USER kindred
WORKDIR /var/lib/kindred
VOLUME ["/var/lib/kindred"]
# 9187: /healthz, /readyz, /metrics (keep it on a private network); 8443: Telegram's
# webhook, when telegram.mode = "webhook".
EXPOSE 9187 8443
# SIGTERM lets people's replies in flight finish (conversation.shutdown_grace_seconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["kindred"]
CMD ["run"]
