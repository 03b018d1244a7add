"""Analysis that turns observation into decisions: plan findings, index advice, events."""

from ._events import ADVICE_LOGGER, AdviceEvent, emit, set_log_interval, subscribe, unsubscribe
from ._plan import analyze_plan
from ._plan_model import PlanFinding, TableStats

__all__ = [
    "ADVICE_LOGGER",
    "AdviceEvent",
    "PlanFinding",
    "TableStats",
    "analyze_plan",
    "emit",
    "set_log_interval",
    "subscribe",
    "unsubscribe",
]
