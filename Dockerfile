# burnbox container image.
#
#   docker build -t burnbox:dev .
#   docker run --rm -p 8080:8080 -p 50051:50051 -p 9090:9090 burnbox:dev
#
# Uses BuildKit cache mounts (the default builder since Docker 23) so that rebuilds reuse the
# crate downloads and compiled dependencies.

# ---- build -------------------------------------------------------------------------------------
# The toolchain the workspace pins (rust-version 1.95). Nothing else is needed: protos are compiled
# in Rust by protox (no protoc), and no dependency links a C library beyond glibc.
FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
# target/ is a cache mount, which is not part of the image layer: copy the binary out of it in the
# same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p burnbox-server \
    && cp target/release/burnbox /burnbox

# ---- runtime -----------------------------------------------------------------------------------
# distroless/cc: glibc and the gcc runtime libraries a Rust binary links against, CA certificates
# and tzdata, and nothing else: no shell, no package manager, so little to patch and nothing for
# an intruder to use (debian:bookworm-slim would work too, with a user to create and far more in
# it). Same Debian release as the builder, so the glibc versions agree. The :nonroot tag's default
# user is 65532, which the Kubernetes manifests also require (runAsUser: 65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /burnbox /burnbox
USER 65532:65532
# REST, gRPC (h2c), admin (/livez, /readyz, /metrics).
EXPOSE 8080 50051 9090
# burnbox writes nothing to disk: the container runs fine with a read-only root filesystem.
ENTRYPOINT ["/burnbox"]
