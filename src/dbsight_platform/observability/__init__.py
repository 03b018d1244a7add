"""Logs with trace context, and traces and logs exported over OTLP when a collector is set."""
