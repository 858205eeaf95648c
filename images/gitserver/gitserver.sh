#!/bin/bash
# The gitserver image's entry point: one command per container role.
#
#   gitserver http                  lighttpd + git http-backend on :8080, basic auth
#   gitserver ssh                   sshd on :2222, git-shell for the `git` user (uid 10001)
#   gitserver init                  create the bare repositories in $GITSERVER_REPOS (default:
#                                   notes), each with a first commit; leaves existing ones alone
#   gitserver credentials DIR [HOST...]
#                                   a random password, a client key pair, a host key pair,
#                                   authorized_keys and known_hosts (for HOST, default
#                                   gitserver, port 2222) in DIR; leaves an existing set alone
#   gitserver health                the port of this container's server accepts (HEALTHCHECK)
#
# The servers read their secrets from /etc/gitserver/secrets: `password` (HTTP, user
# $GITSERVER_USER, default git), `host_key` and `authorized_keys` (SSH).
set -euo pipefail

ROOT=/srv/git
SECRETS=/etc/gitserver/secrets
RUNTIME=/tmp/gitserver
SSH_PORT=2222
HTTP_PORT=8080

die() {
  echo "gitserver: $*" >&2
  exit 2
}

need_file() {
  [ -r "$1" ] || die "$1 is missing or unreadable ($2)"
}

http() {
  need_file "$SECRETS/password" "the HTTP password: mount the secrets there"
  local user=${GITSERVER_USER:-git} password
  password=$(tr -d '\r\n' <"$SECRETS/password")
  [ -n "$password" ] || die "$SECRETS/password is empty"
  case "$user" in *:* | '') die "GITSERVER_USER must be a non-empty name without ':', got '$user'" ;; esac
  mkdir -p "$RUNTIME"
  (umask 077 && printf '%s:%s\n' "$user" "$password" >"$RUNTIME/users")
  echo "gitserver: smart HTTP on :$HTTP_PORT for user $user, repositories in $ROOT" >&2
  exec lighttpd -D -f /etc/gitserver/lighttpd.conf
}

ssh_server() {
  need_file "$SECRETS/host_key" "the SSH host key"
  need_file "$SECRETS/authorized_keys" "the client keys allowed to log in"
  echo "gitserver: sshd on :$SSH_PORT for user $(id -un), repositories in $ROOT" >&2
  # An absolute path: sshd re-executes itself for each connection. -e: log to stderr.
  exec /usr/sbin/sshd -D -e -f /etc/gitserver/sshd_config
}

# A repository is made under a temporary name and renamed when complete, so a crash leaves
# no half-made repository under the real name (and the next init makes it again).
init() {
  local name repo tmp blob tree commit
  for name in ${GITSERVER_REPOS:-notes}; do
    case "$name" in */* | .* | '') die "GITSERVER_REPOS: '$name' is not a plain repository name" ;; esac
    repo="$ROOT/$name.git"
    [ -f "$repo/HEAD" ] && continue
    tmp="$ROOT/.init-$name.git"
    rm -rf "$tmp"
    git init -q --bare --initial-branch=main "$tmp"
    # A first commit: a client that clones or pulls needs a branch to find.
    blob=$(printf '# %s\n\nServed by the gitserver image of pod-patterns.\n' "$name" \
      | git --git-dir="$tmp" hash-object -w --stdin)
    tree=$(printf '100644 blob %s\tREADME.md\n' "$blob" | git --git-dir="$tmp" mktree)
    commit=$(GIT_AUTHOR_NAME=gitserver GIT_AUTHOR_EMAIL=gitserver@localhost \
      GIT_COMMITTER_NAME=gitserver GIT_COMMITTER_EMAIL=gitserver@localhost \
      git --git-dir="$tmp" commit-tree -m "Create $name" "$tree")
    git --git-dir="$tmp" update-ref refs/heads/main "$commit"
    mv "$tmp" "$repo"
    echo "gitserver: created $repo" >&2
  done
}

credentials() {
  [ $# -ge 1 ] || die "usage: gitserver credentials DIR [HOST...]"
  local dir=$1 host type key _
  shift
  [ $# -ge 1 ] || set -- gitserver
  if [ -s "$dir/password" ] && [ -s "$dir/known_hosts" ]; then
    echo "gitserver: credentials in $dir already made, kept" >&2
    return 0
  fi
  mkdir -p "$dir"
  umask 077
  rm -f "$dir/ssh" "$dir/ssh.pub" "$dir/host_key" "$dir/host_key.pub"
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/password"
  ssh-keygen -q -t ed25519 -N '' -C gitsync -f "$dir/ssh"
  ssh-keygen -q -t ed25519 -N '' -C gitserver -f "$dir/host_key"
  cp "$dir/ssh.pub" "$dir/authorized_keys"
  read -r type key _ <"$dir/host_key.pub"
  : >"$dir/known_hosts"
  for host in "$@"; do echo "[$host]:$SSH_PORT $type $key" >>"$dir/known_hosts"; done
  echo "gitserver: credentials made in $dir for host(s) $*" >&2
}

health() {
  local port=$HTTP_PORT
  [ "$(cat /proc/1/comm)" = sshd ] && port=$SSH_PORT
  exec 3<>"/dev/tcp/127.0.0.1/$port"
}

case "${1:-}" in
  http) http ;;
  ssh) ssh_server ;;
  init) init ;;
  credentials) shift; credentials "$@" ;;
  health) health ;;
  *) die "unknown command '${1:-}' (known: http, ssh, init, credentials DIR [HOST...], health)" ;;
esac
