# Every service image of the project, one target each, sharing their build stages.
# Build context: the repo root. Pick the service with --target:
#   online (registry + PyPI):
#     docker build --target adapter -t pod-patterns/adapter .
#   offline (scripts/build-images.sh does this, with the wheels in wheelhouse/):
#     docker build --target adapter -t pod-patterns/adapter \
#       --build-arg BASE_IMAGE=pod-patterns/debian-python:bookworm \
#       --build-arg PIP_INSTALL_ARGS="--no-index --find-links=/wheelhouse" \
#       --build-arg BUILD_PACKAGES="gcc libc6-dev python3-dev" .
# Targets: adapter, sidecar, ambassador, echoserver, gitsync, logagent.
#
#   deps ──▶ venv ─────────────▶ adapter, echoserver, gitsync, logagent (+ their code in /app)
#     └────▶ compiled ─────────▶ sidecar, ambassador (the package installed, hot path compiled)
#   runtime (ENV, workdir) ────▶ every target
#
# No BuildKit-only syntax, so the classic builder and podman build it too. BuildKit builds
# only the stages a target needs; the classic builder every stage above it, which is why the
# compiler stage comes after the pure-Python targets.
# VERSION, REVISION, CREATED and SOURCE fill the OCI labels (scripts/build-images.sh passes
# podkit.__version__, the git revision, the commit's time and the origin remote's URL).

# Base image and package source are arguments, never a fork of this file.
ARG BASE_IMAGE=python:3.12-slim

# ---- deps: the pinned runtime dependencies, installed into a venv ------------------------------
FROM ${BASE_IMAGE} AS deps
# Where packages come from: PyPI by default; "--no-index --find-links=/wheelhouse" offline.
ARG PIP_INSTALL_ARGS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
COPY requirements.lock requirements-build.lock /tmp/
# Empty (but for its .gitignore) online; holds the wheels offline.
COPY wheelhouse/ /wheelhouse/
# PIP_INSTALL_ARGS is split into words on purpose.
# hadolint ignore=SC2086
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-deps ${PIP_INSTALL_ARGS} -r /tmp/requirements.lock \
    && /opt/venv/bin/pip check

# ---- venv: what the pure-Python services copy (pip itself left out) ----------------------------
FROM deps AS venv
RUN /opt/venv/bin/pip uninstall -y -q pip setuptools

# ---- runtime: what every service image starts from ---------------------------------------------
FROM ${BASE_IMAGE} AS runtime
# Bytecode is compiled at build time: the root FS may be read-only at run time.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
WORKDIR /app

# Each target below ends the same way: numeric USER (no passwd entry needed), the ports, the
# HEALTHCHECK (podkit.healthcheck asks /healthz on the address the service's own variable
# names; slim images have no curl), an exec-form ENTRYPOINT (the service is PID 1 and drains
# on SIGTERM), then the build's facts: they change on every commit, so they come last and
# rebuild nothing before them.

# ---- adapter: Redis -> Prometheus, a drop-in for oliver006/redis_exporter ----------------------
FROM runtime AS adapter
COPY --from=venv /opt/venv /opt/venv
ENV PYTHONPATH=/app
# The code last: an edit rebuilds only these layers.
COPY podkit/ /app/podkit/
COPY adapter/ /app/adapter/
RUN python3 -m compileall -q /app/podkit /app/adapter
USER 10001:10001
EXPOSE 9121
# https when REDIS_EXPORTER_TLS_SERVER_CERT_FILE is set; /healthz needs no basic auth.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python3", "-m", "podkit.healthcheck", "adapter"]
ENTRYPOINT ["python3", "-m", "adapter"]
ARG VERSION=0.1.0
ARG REVISION=""
ARG CREATED=""
ARG SOURCE=""
ENV POD_PATTERNS_REVISION=${REVISION}
LABEL org.opencontainers.image.title="pod-patterns adapter" \
      org.opencontainers.image.description="Adapter pattern: exposes Redis as Prometheus metrics (drop-in for redis_exporter)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

# ---- echoserver: the demo main container, answers with the request it received ---------------
FROM runtime AS echoserver
COPY --from=venv /opt/venv /opt/venv
ENV PYTHONPATH=/app
COPY podkit/ /app/podkit/
COPY echoserver/ /app/echoserver/
RUN python3 -m compileall -q /app/podkit /app/echoserver
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python3", "-m", "podkit.healthcheck", "echoserver"]
ENTRYPOINT ["python3", "-m", "echoserver"]
ARG VERSION=0.1.0
ARG REVISION=""
ARG CREATED=""
ARG SOURCE=""
ENV POD_PATTERNS_REVISION=${REVISION}
LABEL org.opencontainers.image.title="pod-patterns echoserver" \
      org.opencontainers.image.description="Demo main container: answers every request with what it received" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

# ---- gitsync: the Git sidecar (pull: git-sync v4 drop-in; push: main container -> Git) --------
FROM runtime AS gitsync
# gitsync drives the real git command line; ssh for ssh:// and user@host:path repositories.
# The versions are the base release's own (a security update comes with a rebuild). The
# passwd line: ssh refuses to run for a uid without one (git-sync's --add-user does the same
# at run time).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && echo 'gitsync:x:10001:10001:gitsync:/tmp:/usr/sbin/nologin' >> /etc/passwd \
    && echo 'gitsync:x:10001:' >> /etc/group
COPY --from=venv /opt/venv /opt/venv
# HOME=/tmp: git and ssh look there for their own files (mount an emptyDir there).
ENV PYTHONPATH=/app \
    HOME=/tmp
COPY podkit/ /app/podkit/
COPY gitsync/ /app/gitsync/
RUN python3 -m compileall -q /app/podkit /app/gitsync
USER 10001:10001
EXPOSE 2020
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python3", "-m", "podkit.healthcheck", "gitsync"]
ENTRYPOINT ["python3", "-m", "gitsync"]
ARG VERSION=0.1.0
ARG REVISION=""
ARG CREATED=""
ARG SOURCE=""
ENV POD_PATTERNS_REVISION=${REVISION}
LABEL org.opencontainers.image.title="pod-patterns gitsync" \
      org.opencontainers.image.description="Git sidecar: publishes a repository into a shared volume (git-sync v4 drop-in) or commits and pushes what the main container writes" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

# ---- logagent: streams the main container's log files to stdout and/or syslog ----------------
FROM runtime AS logagent
COPY --from=venv /opt/venv /opt/venv
# The checkpoints go to /var/lib/logagent: mount a volume there (an emptyDir outlives a
# container restart, which is what at-least-once across a crash needs).
ENV PYTHONPATH=/app \
    LOGAGENT_STATE_DIR=/var/lib/logagent
COPY podkit/ /app/podkit/
COPY logagent/ /app/logagent/
RUN python3 -m compileall -q /app/podkit /app/logagent \
    && mkdir -p /var/lib/logagent && chown 10001:10001 /var/lib/logagent
# To read the application's files the agent shares their volume and, if need be, their
# group (fsGroup).
USER 10001:10001
VOLUME ["/var/lib/logagent"]
EXPOSE 9880
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python3", "-m", "podkit.healthcheck", "logagent"]
ENTRYPOINT ["python3", "-m", "logagent"]
ARG VERSION=0.1.0
ARG REVISION=""
ARG CREATED=""
ARG SOURCE=""
ENV POD_PATTERNS_REVISION=${REVISION}
LABEL org.opencontainers.image.title="pod-patterns logagent" \
      org.opencontainers.image.description="Sidecar pattern: streams an application's log files to stdout or syslog, at least once" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

# ---- compiled: the package built with its hot path compiled by mypyc (the proxies) --------------
FROM deps AS compiled
ARG PIP_INSTALL_ARGS=""
# mypyc's C needs a compiler here (never in a runtime image); the official python images
# carry Python's headers, a bare Debian python3 needs python3-dev too (build-images.sh).
ARG BUILD_PACKAGES="gcc libc6-dev"
# BUILD_PACKAGES is split into words on purpose; the versions are the base release's own.
# hadolint ignore=DL3008,SC2086
RUN apt-get update \
    && apt-get install -y --no-install-recommends ${BUILD_PACKAGES} \
    && rm -rf /var/lib/apt/lists/*
# hadolint ignore=SC2086
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip install --no-deps ${PIP_INSTALL_ARGS} -r /tmp/requirements-build.lock
WORKDIR /src
COPY pyproject.toml setup.py README.md /src/
COPY podkit/ /src/podkit/
COPY sidecar/ /src/sidecar/
COPY ambassador/ /src/ambassador/
# POD_PATTERNS_BUILD=compiled: a build that cannot compile fails here instead of shipping pure.
RUN POD_PATTERNS_BUILD=compiled /opt/build/bin/pip wheel --no-deps --no-build-isolation \
        -w /tmp/dist . \
    && /opt/venv/bin/pip install --no-deps /tmp/dist/*.whl \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/pip uninstall -y -q pip setuptools

# ---- sidecar: TLS termination in front of the main web container ------------------------------
FROM runtime AS sidecar
COPY --from=compiled /opt/venv /opt/venv
# /certs belongs to the service user, so an empty volume mounted there (compose) is writable
# by the one-shot certificate container (python3 -m sidecar.selfsign).
RUN mkdir /certs && chown 10001:10001 /certs
USER 10001:10001
EXPOSE 8443 9000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python3", "-m", "podkit.healthcheck", "sidecar"]
ENTRYPOINT ["python3", "-m", "sidecar"]
ARG VERSION=0.1.0
ARG REVISION=""
ARG CREATED=""
ARG SOURCE=""
# The git revision, for sidecar_build_info.
ENV POD_PATTERNS_REVISION=${REVISION}
LABEL org.opencontainers.image.title="pod-patterns sidecar" \
      org.opencontainers.image.description="Sidecar pattern: TLS termination in front of the main web container (stands in for nginx)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

# ---- ambassador: weighted HTTP load balancing with nginx's upstream semantics -----------------
FROM runtime AS ambassador
COPY --from=compiled /opt/venv /opt/venv
USER 10001:10001
EXPOSE 8080 9000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python3", "-m", "podkit.healthcheck", "ambassador"]
ENTRYPOINT ["python3", "-m", "ambassador"]
ARG VERSION=0.1.0
ARG REVISION=""
ARG CREATED=""
ARG SOURCE=""
ENV POD_PATTERNS_REVISION=${REVISION}
LABEL org.opencontainers.image.title="pod-patterns ambassador" \
      org.opencontainers.image.description="Ambassador pattern: weighted HTTP load balancing with nginx upstream semantics" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
