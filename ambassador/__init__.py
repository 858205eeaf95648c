"""The ambassador pattern: the pod's entry point, balancing HTTP across upstream services
with nginx's `upstream` semantics (smooth weighted round robin, max_fails/fail_timeout,
backup, retries), plus active health checks and DNS re-resolution."""
