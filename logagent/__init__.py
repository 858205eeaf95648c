"""logagent: the log-streaming sidecar. Follows files by path or glob through rotation and
truncation, shapes the lines into records, and delivers them at least once to stdout and/or
syslog (RFC 5424 over TCP or TLS), checkpointing positions only after the outputs took them.
"""
