#!/bin/sh
# What the official redis image's entrypoint does that compose files rely on.
set -e

# `docker run redis --foo` and `docker run redis /path/redis.conf` mean redis-server.
case "$1" in
  -*|*.conf) set -- redis-server "$@" ;;
esac

# The official image compiles protected mode off: a container's port is published on purpose,
# and with it on, any client not on the container's loopback gets a DENIED error. Given
# first, so an explicit --protected-mode in the arguments still wins. A config file must be
# redis-server's first argument: then the file decides, as it does in the official image.
if [ "$1" = redis-server ]; then
  shift
  case "$1" in
    *.conf) ;;
    *) set -- --protected-mode no "$@" ;;
  esac
  set -- redis-server "$@"
fi

exec "$@"
