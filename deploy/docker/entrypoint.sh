#!/bin/sh
# The image's entrypoint: secrets given as files (Docker and Swarm mount them under
# /run/secrets) become the variables the programs read, then the command runs in its place:
#   ADMIN_TOKEN_FILE        -> DBSIGHT_ADMIN_TOKEN   (dbsight's endpoints and the proxy's admin port)
#   POSTGRES_PASSWORD_FILE  -> POSTGRES_PASSWORD     (the proxy's upstream login, the demo's seed job)
#   REDIS_PASSWORD_FILE     -> REDIS_PASSWORD
# A file's trailing newline is not part of the secret; a file that cannot be read stops here.
set -eu
load() {  # load FILE_VARIABLE TARGET_VARIABLE
    eval "file=\${$1:-}"
    if [ -n "$file" ]; then
        if [ ! -r "$file" ]; then
            echo "dbsight-entrypoint: $1=$file cannot be read" >&2
            exit 2
        fi
        value=$(cat "$file")
        export "$2=$value"
        unset "$1"
    fi
}
load ADMIN_TOKEN_FILE DBSIGHT_ADMIN_TOKEN
load POSTGRES_PASSWORD_FILE POSTGRES_PASSWORD
load REDIS_PASSWORD_FILE REDIS_PASSWORD
exec "$@"
