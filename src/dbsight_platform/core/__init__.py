"""The platform core: configuration, database, Redis, responses, errors, dependencies."""
