# Quiver node image: quiverd + the quiver CLI on Debian 12 (bookworm).
#
# Build it with ./deploy/up (or: ./deploy/build && ./deploy/up --image-only).
# The binaries are the ones ./deploy/build made on this Debian 12 host, staged
# by ./deploy/up into build/image/ (bin/quiverd, bin/quiver, lib/libraft.so.0):
#   - quiverd links raft 0.22.1, which Debian 12 does not ship (its 0.15.0 has
#     consensus-safety bugs); ./deploy/build fetches and builds it once on the
#     host.  Compiling inside the image instead would repeat that raft build and
#     a ~300 MB toolchain install on every image build, for the same result:
#     host and image are both bookworm, so the host-built binaries use exactly
#     the libraries apt-get installs below.  ./deploy/up checks that by running
#     `quiverd --version` in the new image.
#   - The runtime libraries come from Debian's packages, not from the host.
#
# FROM is the official image for users who can pull it.  Where no registry is
# reachable, ./deploy/up first creates debian:bookworm-slim locally (debootstrap
# --variant=minbase from the machine's own Debian mirror, `docker import`ed
# under the same name), so this same file builds offline: the apt-get below
# only needs the Debian mirror, which containers reach.
FROM debian:bookworm-slim

# librocksdb7.8 libuv1 liblz4-1 libxxhash0 libpcre2-8-0: quiverd (and libraft);
# libhiredis0.14 libedit2 zlib1g: the quiver CLI.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      librocksdb7.8 libuv1 liblz4-1 libxxhash0 libpcre2-8-0 libhiredis0.14 libedit2 zlib1g \
 && rm -rf /var/lib/apt/lists/*

# An unprivileged user; /data belongs to it, and a new named volume mounted
# there inherits that owner.
RUN groupadd --system quiver \
 && useradd --system --gid quiver --home-dir /data --no-create-home --shell /usr/sbin/nologin quiver \
 && mkdir -p /data \
 && chown quiver:quiver /data

COPY build/image/lib/ /usr/local/lib/
COPY build/image/bin/ /usr/local/bin/
COPY deploy/image/quiver-http /usr/local/bin/quiver-http
# The binaries' RUNPATH names the host's .deps folder, absent here: the
# dynamic loader falls back to its cache, which now includes /usr/local/lib.
RUN ldconfig && quiverd --version

USER quiver
WORKDIR /data
VOLUME /data
# 6379 clients (RESP), 7379 raft peers, 8080 admin HTTP (/healthz /readyz /status /metrics)
EXPOSE 6379 7379 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 CMD ["quiver-http", "/healthz"]
# Marks Quiver's node images: ./deploy/up removes the untagged ones that each
# rebuild leaves (`docker image prune --filter label=org.quiver.image=node`).
LABEL org.quiver.image=node
ENTRYPOINT ["quiverd"]
# Alone, the image runs a single-node cluster; docker-compose.yml passes the
# three-node flags.
CMD ["--bind", "0.0.0.0", "--port", "6379", "--data-dir", "/data", "--admin-port", "8080"]
