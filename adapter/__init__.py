"""The adapter pattern: a Redis → Prometheus exporter that runs beside Redis in one pod.

A drop-in for oliver006/redis_exporter: the same flags (and their Go-style spellings), the
same environment variables, and the same metric names, types and labels.
"""
