# syntax=docker/dockerfile:1
# sluice container image: build in the official Rust image, run on distroless/cc (Debian 12: glibc 2.36,
# libgcc; no shell, no package manager). Build from the repository root:
#   docker build -t sluice:0.1.0 .
# The base images are arguments so a mirror or a pinned digest can be used.
ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# --locked: exactly the dependency versions of Cargo.lock. The binary links only glibc and libgcc.
RUN cargo build --release --locked --bin sluice \
 && cp target/release/sluice /usr/local/bin/sluice \
 && /usr/local/bin/sluice --version

FROM ${RUNTIME_IMAGE}
COPY --from=build /usr/local/bin/sluice /usr/bin/sluice
COPY deploy/docker/fluent.conf /etc/sluice/fluent.conf
# Root only because a DaemonSet reads the node's log files (hostPath /var/log), which are root-owned and
# 0640 on most distributions; the Helm chart drops every capability but DAC_READ_SEARCH and keeps the
# root filesystem read-only. Give it a non-root user when the logs it reads allow (see docs/deploy.md).
# hadolint ignore=DL3002
USER 0:0
# 24231: the monitoring port (Prometheus metrics and health) when the configuration opens it.
EXPOSE 24231
ENTRYPOINT ["/usr/bin/sluice"]
CMD ["-c", "/etc/sluice/fluent.conf"]
