"""The event engine: a ``Schedule`` (tasks on resources) executed with SimPy into a ``Trace``."""
