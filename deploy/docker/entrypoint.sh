#!/bin/sh
# The image's entrypoint: each secret given as a file (VAR_FILE=/run/secrets/..., as Docker
# and Swarm secrets are mounted) becomes the variable VAR, then the command runs in its place.
set -eu
for var in DBSIGHT_ADMIN_TOKEN POSTGRES_PASSWORD REDIS_PASSWORD; do
    eval "file=\${${var}_FILE:-}"
    if [ -n "$file" ]; then
        if [ ! -r "$file" ]; then
            echo "dbsight-entrypoint: ${var}_FILE=$file cannot be read" >&2
            exit 2
        fi
        value=$(cat "$file")
        export "$var=$value"
        unset "${var}_FILE"
    fi
done
exec "$@"
