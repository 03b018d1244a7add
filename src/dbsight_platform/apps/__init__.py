"""The applications the platform hosts, each under its own path prefix and code range."""
