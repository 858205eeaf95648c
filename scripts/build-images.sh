#!/usr/bin/env bash
# Build the images that docker-compose.yml and the container/e2e tests run.
#
#   scripts/build-images.sh                 # all of them
#   scripts/build-images.sh adapter redis   # only these (a service, peer or helper name)
#
# Two modes, chosen by POD_PATTERNS_OFFLINE=1|0, detected when unset:
#   online   a container registry answers: the services build FROM python:3.12-slim with pip
#            from PyPI (the Dockerfiles' defaults); compose pulls the official redis and
#            prometheus images.
#   offline  no registry: the services build FROM a Debian+Python base made here with
#            mmdebstrap, from wheels that the host downloads into wheelhouse/; redis and
#            prometheus are stand-ins built with apt from images/<name>/.
# In both modes the helpers that have no official image (the Git server and the syslog
# receiver of the gitsync and logagent pods) are built from images/<name>/: FROM Debian's
# slim image online, FROM the local Debian base offline.
# Both write .env, so a plain `docker compose up` (and `docker compose build`) uses these
# images. Re-runs are quick: docker's layer cache, and the wheelhouse is refilled only when
# requirements.lock or the base image changes. One line is printed per image built: its tag,
# id, whether it changed, its size and the seconds it took.
#
# Tags: the project's images are tagged with podkit.__version__ (the tag k8s/ names in
# k8s/components/release), and carry the OCI labels version, revision (git), created (the
# commit's time, so a rebuild of the same commit is the same image; SOURCE_DATE_EPOCH wins)
# and source (the origin remote, when the checkout has one).
set -euo pipefail

cd "$(dirname "$0")/.."

# The Python services: one target each of the Dockerfile at the repo root (the repo root as
# context), tagged pod-patterns/<svc>:<version> and named in .env as <SVC>_IMAGE. A new
# service is a target there and one word here.
SERVICES=(adapter sidecar ambassador echoserver gitsync logagent)

# Third-party peers: the official image online, a stand-in from images/<peer>/ offline.
PEERS=(redis prometheus)
declare -A OFFICIAL=([redis]=redis:7 [prometheus]=prom/prometheus:v2.53.0)
declare -A STANDIN=([redis]=pod-patterns/redis:7 [prometheus]=pod-patterns/prometheus:latest)

# Helpers with no official image: always images/<name>/, tagged pod-patterns/<name>:<version>.
HELPERS=(gitserver rsyslog)

BASE_IMAGE=pod-patterns/debian-python:bookworm
OFFLINE_PIP_ARGS="--no-index --find-links=/wheelhouse"
OFFLINE_BUILD_PACKAGES="gcc libc6-dev python3-dev"
VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' podkit/__init__.py | head -n1)

log() { echo "build-images: $*" >&2; }
die() { log "$*"; exit 1; }

is_one_of() {
  local want=$1 item
  shift
  for item in "$@"; do [ "$item" = "$want" ] && return 0; done
  return 1
}

# Docker Hub answers on 443 when a registry is reachable; bounded to ~2 s either way.
registry_reachable() {
  timeout 1 getent hosts registry-1.docker.io >/dev/null 2>&1 \
    && timeout 1 bash -c 'exec 3<>/dev/tcp/registry-1.docker.io/443' 2>/dev/null
}

# docker build, quiet unless it fails; prints "<tag> <short id> <built|unchanged> <size> <secs>".
build() {
  local tag=$1 context=$2 dockerfile=$3 before after start logfile
  shift 3
  before=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
  logfile=$(mktemp)
  start=$SECONDS
  if ! docker build -t "$tag" -f "$dockerfile" "$@" "$context" >"$logfile" 2>&1; then
    tail -n 40 "$logfile" >&2
    rm -f "$logfile"
    die "building $tag failed"
  fi
  rm -f "$logfile"
  after=$(docker image inspect -f '{{.Id}}' "$tag")
  printf '%-36s %.12s  %-9s %7s %3ss\n' "$tag" "${after#sha256:}" \
    "$([ "$before" = "$after" ] && echo unchanged || echo built)" "$(image_size "$tag")" \
    "$((SECONDS - start))"
}

# The image's size as `docker images` shows it (MB, 10^6 bytes).
image_size() {
  local bytes
  bytes=$(docker image inspect -f '{{.Size}}' "$1")
  echo "$((bytes / 1000000)) MB"
}

ensure_base_image() {
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return
  command -v mmdebstrap >/dev/null || die "$BASE_IMAGE is missing and so is mmdebstrap (run scripts/bootstrap-host.sh)"
  log "making $BASE_IMAGE with mmdebstrap (about 40 s)"
  # PATH is set at import: an imported rootfs has no environment, and podman then finds nothing.
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates bookworm - \
    | docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
  printf '%-36s %.12s  %-9s %7s\n' "$BASE_IMAGE" "$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE" | cut -c8-)" \
    built "$(image_size "$BASE_IMAGE")"
}

# The interpreter the offline images run, described by the base image itself: marker values
# for requirements.lock and what pip needs to pick its wheels.
TARGET_PY='
import json, os, platform, sys
print(json.dumps({
    "implementation_name": sys.implementation.name,
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_python_implementation": platform.python_implementation(),
    "platform_system": platform.system(),
    "python_full_version": platform.python_version(),
    "python_version": "%d.%d" % sys.version_info[:2],
    "sys_platform": sys.platform,
    "glibc": platform.libc_ver()[1],
}))'

# Reads the target's description and requirements.lock; writes the requirements that apply to
# the target (pip would judge the markers by the host's python, e.g. 3.11.7 drops async-timeout
# that Debian's 3.11.2 needs) to argv[2], and prints pip download's target options.
SELECT_PY='
import json, sys
try:
    from packaging.markers import Marker
except ImportError:
    from pip._vendor.packaging.markers import Marker
target = json.loads(sys.argv[1])
wanted = []
with open(sys.argv[3]) as lock:
    for line in lock:
        if not line.strip() or line[0] in " #-":
            continue
        req, _, marker = line.partition(";")
        if (not marker.strip() or Marker(marker.strip()).evaluate(target)) and req.strip() not in wanted:
            wanted.append(req.strip())  # a pin both locks share is asked for once
with open(sys.argv[2], "w") as out:
    out.writelines(req + "\n" for req in wanted)
major, minor = target["python_version"].split(".")
arch = target["platform_machine"]
glibc_minor = int(target["glibc"].split(".")[1])
args = ["--python-version", target["python_version"], "--implementation", "cp",
        "--abi", f"cp{major}{minor}"]
for m in range(glibc_minor, 4, -1):
    args += ["--platform", f"manylinux_2_{m}_{arch}"]
args += ["--platform", f"manylinux2014_{arch}", "--platform", f"manylinux2010_{arch}",
         "--platform", f"manylinux1_{arch}"]
print("\n".join(args))'

fill_wheelhouse() {
  local stamp=wheelhouse/.stamp want target tmp
  want="$(cat requirements.lock requirements-build.lock | sha256sum | cut -d' ' -f1) $(docker image inspect -f '{{.Id}}' "$BASE_IMAGE")"
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return
  log "downloading wheels for requirements.lock and requirements-build.lock into wheelhouse/"
  target=$(docker run --rm --network none --entrypoint python3 "$BASE_IMAGE" -c "$TARGET_PY")
  tmp=$(mktemp -d)
  local -a pip_target
  cat requirements.lock requirements-build.lock >"$tmp/all.lock"
  mapfile -t pip_target < <(python3 -c "$SELECT_PY" "$target" "$tmp/requirements.txt" "$tmp/all.lock")
  [ "${#pip_target[@]}" -gt 0 ] || { rm -rf "$tmp"; die "could not read requirements.lock's markers"; }
  find wheelhouse -maxdepth 1 -name '*.whl' -delete
  # --no-deps: the lock is complete; pip resolves nothing, it fetches what the lock pins.
  python3 -m pip download -qq --disable-pip-version-check --no-deps --only-binary=:all: \
    "${pip_target[@]}" --dest wheelhouse -r "$tmp/requirements.txt" \
    || { rm -rf "$tmp"; die "pip download failed (does the host reach PyPI?)"; }
  rm -rf "$tmp"
  echo "$want" >"$stamp"
}

# .env for compose: the image names (and, offline, the build args) this script owns; any other
# line a user put there is kept.
write_env() {
  local mode=$1 key tmp
  local -a lines=()
  for key in "${PEERS[@]}"; do
    if [ "$mode" = offline ]; then
      lines+=("${key^^}_IMAGE=${STANDIN[$key]}")
    else
      lines+=("${key^^}_IMAGE=${OFFICIAL[$key]}")
    fi
  done
  for key in "${SERVICES[@]}" "${HELPERS[@]}"; do lines+=("${key^^}_IMAGE=pod-patterns/$key:$VERSION"); done
  # Offline, `docker compose build` needs the same build args as this script.
  [ "$mode" = offline ] && lines+=("BASE_IMAGE=$BASE_IMAGE" "PIP_INSTALL_ARGS=\"$OFFLINE_PIP_ARGS\""
    "BUILD_PACKAGES=\"$OFFLINE_BUILD_PACKAGES\"")
  local owned="BASE_IMAGE|PIP_INSTALL_ARGS|BUILD_PACKAGES"
  for key in "${PEERS[@]}" "${SERVICES[@]}" "${HELPERS[@]}"; do owned+="|${key^^}_IMAGE"; done
  tmp=$(mktemp)
  {
    echo "# Written by scripts/build-images.sh ($mode mode); lines it does not own are kept."
    printf '%s\n' "${lines[@]}"
    if [ -f .env ]; then grep -Ev "^(# Written by scripts/build-images.sh|($owned)=)" .env || true; fi
  } >"$tmp"
  mv "$tmp" .env
}

main() {
  local name mode
  local -a wanted=("$@")
  [ ${#wanted[@]} -gt 0 ] || wanted=("${SERVICES[@]}" "${PEERS[@]}" "${HELPERS[@]}")
  for name in "${wanted[@]}"; do
    is_one_of "$name" "${SERVICES[@]}" "${PEERS[@]}" "${HELPERS[@]}" \
      || { log "unknown image '$name' (known: ${SERVICES[*]} ${PEERS[*]} ${HELPERS[*]})"; exit 2; }
  done

  docker info >/dev/null 2>&1 || die "no Docker daemon (run scripts/bootstrap-host.sh)"

  case "${POD_PATTERNS_OFFLINE:-auto}" in
    1) mode=offline ;;
    0) mode=online ;;
    auto) if registry_reachable; then mode=online; else mode=offline; fi ;;
    *) die "POD_PATTERNS_OFFLINE must be 1, 0 or unset, not '$POD_PATTERNS_OFFLINE'" ;;
  esac
  log "$mode mode"

  local revision created source epoch
  revision=$(git rev-parse --short HEAD 2>/dev/null || true)
  # The commit's time, not the clock's: rebuilding a commit gives the same labels.
  epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
  created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
  source=$(git config --get remote.origin.url 2>/dev/null || true)
  case "$source" in git@*:*) source="https://${source#git@}" && source=${source/://} ;; esac
  source=${source%.git}
  local -a label_args=(--build-arg "VERSION=$VERSION" --build-arg "REVISION=$revision"
    --build-arg "CREATED=$created" --build-arg "SOURCE=$source")
  local -a service_args=("${label_args[@]}")
  local -a helper_args=("${label_args[@]}")
  if [ "$mode" = offline ]; then
    ensure_base_image
    helper_args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
    # The bare Debian python3 has no headers: the compiled hot path needs python3-dev.
    service_args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "PIP_INSTALL_ARGS=$OFFLINE_PIP_ARGS"
      --build-arg "BUILD_PACKAGES=$OFFLINE_BUILD_PACKAGES")
    for name in "${wanted[@]}"; do
      if is_one_of "$name" "${SERVICES[@]}"; then fill_wheelhouse; break; fi
    done
  fi

  for name in "${wanted[@]}"; do
    if is_one_of "$name" "${SERVICES[@]}"; then
      build "pod-patterns/$name:$VERSION" . Dockerfile --target "$name" "${service_args[@]}"
    elif is_one_of "$name" "${HELPERS[@]}"; then
      build "pod-patterns/$name:$VERSION" "images/$name" "images/$name/Dockerfile" "${helper_args[@]}"
    elif [ "$mode" = offline ]; then
      build "${STANDIN[$name]}" "images/$name" "images/$name/Dockerfile" --build-arg "BASE_IMAGE=$BASE_IMAGE"
    fi
  done

  write_env "$mode"
}

main "$@"
