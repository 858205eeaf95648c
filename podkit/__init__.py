"""What the three pod helpers share: options from flags and env, logging, admin endpoints,
and the process lifecycle (event loop, signals, graceful shutdown).

Services import podkit; podkit never imports a service.
"""

# The project's version, set here only: pyproject.toml reads it (a dynamic version), and
# so do buildinfo and the image build, without importlib.metadata.
__version__ = "0.1.0"
