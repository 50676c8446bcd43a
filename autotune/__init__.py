"""autotune: find the fastest TensorFlow Serving thread settings for this host.

Importing this package stays light (no TensorFlow, no Optuna): the serving image ships
only `autotune/__init__.py` and `autotune/serving/`, and the CLI imports the heavy
modules only for the subcommand that needs them.
"""

__version__ = "0.1.0"
