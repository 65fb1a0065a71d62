# envlock in a container, for hosts without Python or Rust: it talks to the engine through
# its socket.
#   docker build -t envlock .
#   docker run --rm -v /var/run/docker.sock:/var/run/docker.sock \
#       -v "$PWD:$PWD" -w "$PWD" -e TMPDIR="$PWD" envlock diff dev.lock ml-model:latest
# (the same path inside and out, and TMPDIR under it: golden inputs are bind-mounted into the
# model's container by the engine, which sees host paths.)
ARG BUILDER=rust:1-slim-bookworm
ARG RUNTIME=debian:bookworm-slim

FROM ${BUILDER} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY build.rs ./
COPY src src
COPY crates crates
RUN cargo build --release --locked --bin envlock && strip target/release/envlock

FROM ${RUNTIME}
COPY --from=build /src/target/release/envlock /usr/local/bin/envlock
ENTRYPOINT ["envlock"]
CMD ["--help"]
