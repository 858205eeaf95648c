"""What the three pod helpers share: options from flags and env, logging, admin endpoints,
and the process lifecycle (event loop, signals, graceful shutdown).

Services import podkit; podkit never imports a service.
"""

__version__ = "0.1.0"
