# switchboard's engine as a container: `run --headless`, logging JSON lines, the SQLite file on
# a volume (or PostgreSQL through database.url), /readyz as the health check.
#   docker build -t switchboard .
#   docker run -e VAPI_API_KEY -v switchboard-data:/var/lib/switchboard \
#     -v ./switchboard.toml:/etc/switchboard/switchboard.toml:ro switchboard

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin switchboard \
 && strip target/release/switchboard

FROM debian:bookworm-slim
# curl for the health check only (TLS to Vapi uses the binary's own webpki roots).
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/switchboard --create-home switchboard
COPY --from=build /src/target/release/switchboard /usr/local/bin/switchboard
COPY assets/docker/switchboard.toml /etc/switchboard/switchboard.toml
USER switchboard
WORKDIR /var/lib/switchboard
VOLUME /var/lib/switchboard
# The health endpoints (metrics.listen in the config above).
EXPOSE 9187
# docker stop sends SIGTERM: the engine stops dispatching, records what is in flight and
# gives its lease back (give it the request timeout + 5 s: --stop-timeout 40).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD curl -fsS http://127.0.0.1:9187/readyz >/dev/null || exit 1
ENTRYPOINT ["switchboard", "--config", "/etc/switchboard/switchboard.toml"]
CMD ["run", "--headless", "--log-format", "json"]
