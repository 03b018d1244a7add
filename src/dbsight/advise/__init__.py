"""Analysis that turns observation into decisions: plan findings, index advice, events."""

from ._events import ADVICE_LOGGER, AdviceEvent, emit, set_log_interval, subscribe, unsubscribe

__all__ = ["ADVICE_LOGGER", "AdviceEvent", "emit", "set_log_interval", "subscribe", "unsubscribe"]
