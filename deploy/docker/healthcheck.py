"""The image's HEALTHCHECK: exit 0 when $HEALTHCHECK_URL (the liveness probe,
http://127.0.0.1:8000/healthz by default; the proxy's is on its admin port) answers 200 within
$HEALTHCHECK_TIMEOUT seconds, else 1. Python, because the slim image has no curl."""

import os
import sys
import urllib.error
import urllib.request

URL = os.environ.get("HEALTHCHECK_URL", "http://127.0.0.1:8000/healthz")
TIMEOUT_S = float(os.environ.get("HEALTHCHECK_TIMEOUT", "3"))


def main() -> int:
    try:
        with urllib.request.urlopen(URL, timeout=TIMEOUT_S) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {URL}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {URL} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
