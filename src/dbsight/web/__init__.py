"""dbsight's HTTP surface for web services: ``/metrics``, ``/metrics/summary``, ``/health``,
``/healthz`` and ``/health/ready`` as one pure ASGI app.

    app = dbsight.web.Endpoints(app=my_asgi_app)       # or let dbsight.instrument(app) mount it

With several worker processes, set ``DBSIGHT_MULTIPROCESS_DIR`` (or
``PROMETHEUS_MULTIPROC_DIR``) so that the metrics are summed over all of them.
"""

from ._endpoints import Endpoints
from ._multiprocess import INTERVAL_S, multiprocess_dir

__all__ = ["INTERVAL_S", "Endpoints", "multiprocess_dir"]
