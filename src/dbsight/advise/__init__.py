"""Analysis that turns observation into decisions: plan findings, index advice, events.

    from dbsight.advise import advise_indexes
    advice = advise_indexes("postgresql://...", workload)   # HypoPG, nothing created
    advice.to_dict()                                         # the `dbsight advise --json` shape
"""

from ._advice import AdvisedIndex, IndexAdvice, Rejected, ServedStatement
from ._advisor import AdvisorOptions, advise_indexes
from ._candidates import Candidate
from ._events import ADVICE_LOGGER, AdviceEvent, emit, set_log_interval, subscribe, unsubscribe
from ._hypo import AdvisorError
from ._plan import analyze_plan
from ._plan_model import PlanFinding, TableStats

__all__ = [
    "ADVICE_LOGGER",
    "AdviceEvent",
    "AdvisedIndex",
    "AdvisorError",
    "AdvisorOptions",
    "Candidate",
    "IndexAdvice",
    "PlanFinding",
    "Rejected",
    "ServedStatement",
    "TableStats",
    "advise_indexes",
    "analyze_plan",
    "emit",
    "set_log_interval",
    "subscribe",
    "unsubscribe",
]
