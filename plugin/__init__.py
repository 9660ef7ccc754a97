"""Flywheel's composition root: settings, storage, services, the Flask app and the CLI."""

__version__ = "0.1.0"
