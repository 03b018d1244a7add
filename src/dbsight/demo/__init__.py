"""``dbsight demo``: a sample FastAPI service on a private PostgreSQL, instrumented by
dbsight, driven with traffic, and what dbsight found.

    from dbsight.demo import DemoConfig, run_demo
    run_demo(DemoConfig(duration_s=30))          # what `dbsight demo --duration 30` does

The pieces are usable alone: `load_sample_data` fills a database with the shop schema,
`dbsight.demo.app.create_app` builds the sample service on it (the HTTP benchmark serves it
with and without dbsight), `drive_traffic` sends it the request mix.
"""

from ._run import DemoConfig, demo_settings, run_demo
from ._schema import COUPONS, SampleSize, load_sample_data
from ._traffic import MIX, TrafficResult, drive_traffic

__all__ = [
    "COUPONS",
    "MIX",
    "DemoConfig",
    "SampleSize",
    "TrafficResult",
    "demo_settings",
    "drive_traffic",
    "load_sample_data",
    "run_demo",
]
