# Images of the two services, built from this workspace (compose.yaml uses the targets).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p gateway -p payment-ms -p migrations

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 app
USER app

FROM runtime AS payment-ms
COPY --from=build /src/target/release/payment-ms /src/target/release/migrations /usr/local/bin/
EXPOSE 8081
ENTRYPOINT ["payment-ms"]

FROM runtime AS gateway
COPY --from=build /src/target/release/gateway /usr/local/bin/
EXPOSE 8080
ENTRYPOINT ["gateway"]
