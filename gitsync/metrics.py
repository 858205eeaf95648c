"""gitsync's metrics, in a registry the service injects (never the global one).

git-sync's own names are kept where the meaning is the same (git_sync_count_total by status,
git_sync_duration_seconds, git_fetch_count_total), so its dashboards work unchanged; the
rest are gitsync_*.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Summary

from gitsync.git import FAILURE_KINDS, FailureKind
from podkit.buildinfo import register_build_info

SYNC_RESULTS = ("success", "error", "noop")


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        register_build_info(registry, "gitsync")
        self.syncs = Counter(
            "git_sync_count_total",
            "Syncs (pull: fetch and publish; push: commit and push) by status",
            ["status"],
            registry=registry,
        )
        self.duration = Summary(
            "git_sync_duration_seconds", "Duration of syncs by status", ["status"],
            registry=registry,
        )
        self.fetches = Counter("git_fetch_count_total", "git fetches run", registry=registry)
        self.failures = Counter(
            "gitsync_failures_total",
            "Failed syncs by kind: auth, network, conflict (a side branch was pushed), "
            "rejected (the remote declined the push), other",
            ["kind"],
            registry=registry,
        )
        self.last_success = Gauge(
            "gitsync_last_success_timestamp_seconds",
            "Unix time of the last successful sync (0: none yet)",
            registry=registry,
        )
        self.pending = Gauge(
            "gitsync_pending_changes",
            "push: files changed under --push-dir and not yet on the remote branch",
            registry=registry,
        )
        self.pushed_bytes = Counter(
            "gitsync_pushed_bytes_total", "push: bytes of pack data sent by git push",
            registry=registry,
        )
        self.commits = Counter(
            "gitsync_commits_total", "push: commits made from --push-dir", registry=registry
        )
        self.refused = Counter(
            "gitsync_refused_files_total",
            "push: file versions not committed because they exceed --max-file-size",
            registry=registry,
        )
        self.conflict_branches = Counter(
            "gitsync_conflict_branches_total",
            "push: side branches pushed because a change conflicted with the remote",
            registry=registry,
        )
        for status in SYNC_RESULTS:
            self.syncs.labels(status)
            self.duration.labels(status)
        for kind in FAILURE_KINDS:
            self.failures.labels(kind)
        self.last_success_at = 0.0  # monotonic twin of the gauge, for /readyz

    def success(self, status: str = "success") -> None:
        self.syncs.labels(status).inc()
        self.last_success.set(time.time())
        self.last_success_at = time.monotonic()

    def failure(self, kind: FailureKind) -> None:
        self.syncs.labels("error").inc()
        self.failures.labels(kind).inc()
