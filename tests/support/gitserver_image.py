"""The gitserver image (images/gitserver) as the container, e2e and k8s tiers use it: the
commands to run inside its containers, and its credentials made by the image itself.

The commands are argv lists, so each tier runs them its own way (testcontainers' exec,
`docker compose exec`, `podman exec`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = "/srv/git/notes.git"

# Commit FILE with TEXT on main straight into the bare repository, as another client's push
# would land, with plumbing (a bare repository has no work tree). update-ref with the old value:
# a push that lands meanwhile makes it fail (run it again), never lose that push.
_COMMIT = """set -e
export GIT_DIR="$1" GIT_INDEX_FILE=/tmp/test-commit-index
export GIT_AUTHOR_NAME=test GIT_AUTHOR_EMAIL=test@example.com
export GIT_COMMITTER_NAME=test GIT_COMMITTER_EMAIL=test@example.com
old=$(git rev-parse refs/heads/main)
git read-tree "$old"
blob=$(printf '%s' "$3" | git hash-object -w --stdin)
git update-index --add --cacheinfo "100644,$blob,$2"
commit=$(git commit-tree -p "$old" -m "test: $2" "$(git write-tree)")
rm -f "$GIT_INDEX_FILE"
git update-ref refs/heads/main "$commit" "$old"
echo "$commit"
"""


def commit_argv(path: str, text: str, repo: str = REPO) -> list[str]:
    """Prints the new commit's hash; fails if main moved while it ran."""
    return ["sh", "-c", _COMMIT, "sh", repo, path, text]


def show_argv(path: str, ref: str = "main", repo: str = REPO) -> list[str]:
    """A file's text at `ref`; fails while it is not there."""
    return ["git", "--git-dir", repo, "show", f"{ref}:{path}"]


def log_argv(*args: str, repo: str = REPO) -> list[str]:
    return ["git", "--git-dir", repo, "log", *args]


def make_credentials(image: str, directory: Path, *hosts: str) -> dict[str, str]:
    """`gitserver credentials` into `directory` (made writable for the image's uid); the
    files' contents by name: password, ssh (+ .pub), host_key (+ .pub), authorized_keys,
    known_hosts (for `hosts`, port 2222)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o777)
    done = subprocess.run(
        ["docker", "run", "--rm", "--read-only", "-v", f"{directory}:/out", image,
         "credentials", "/out", *hosts],
        capture_output=True, text=True, timeout=60, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"gitserver credentials failed ({done.returncode}): {done.stderr}")
    return {p.name: p.read_text() for p in sorted(directory.iterdir()) if p.is_file()}
