# A stand-in for the official redis image (local tests without a registry):
# Debian's redis-server on the local Debian base. `redis-server` and `redis-cli`
# are on PATH as in the official image, so compose.yaml's commands run on both.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* \
 && mkdir -p /data && chown redis:redis /data
USER redis
WORKDIR /data
VOLUME ["/data"]
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]
