"""The composition root and process lifecycle: settings, wiring, the worker, the HTTP server, the CLI."""
