# syntax=docker/dockerfile:1
# bbconn's image: the operator binary on distroless, as user 65532 (nonroot).
#   docker build -t ghcr.io/bbconn/bbconn:0.1.0 .
# The build is glibc (x86_64-unknown-linux-gnu on an amd64 builder, the builder's own target
# elsewhere), on Debian 12 like the runtime image, so the glibc the binary links against is the
# one gcr.io/distroless/cc-debian12 ships. tests/packaging/dockerfile-target.sh parses this file
# with BuildKit's own parser and runs the same cargo command outside an engine; `make image`
# (tests/node/image.sh) builds it with buildah, each FROM given by a named build context (the
# machine has no registry), and checks what the image holds.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# The workspace: the operator, the simulator crate (a member, so --locked can check the lock
# file) and the benches the manifest declares.
COPY Cargo.toml Cargo.lock ./
COPY src/ src/
COPY sim/ sim/
COPY benches/ benches/
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin bbconn && \
    install -D -m 0755 target/release/bbconn /out/bbconn

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="bbconn" \
      org.opencontainers.image.description="Kubernetes operator that checks Bitbucket connections declaratively" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
COPY --from=build /out/bbconn /bbconn
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/bbconn"]
CMD ["run"]
