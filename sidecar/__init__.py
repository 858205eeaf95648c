"""The sidecar pattern: a TLS-terminating reverse proxy beside the pod's main web container.

client → :8443 (TLS) → sidecar → http://127.0.0.1:8080 (the main container, unchanged).
"""
