"""The notifier as the runtime builds it from settings: a `QueryObserver` of statements at
or over ``alert_slow_query_ms`` (the recorder calls it for those only), subscribed to the
advice events and the health checks, handed the N+1 findings by the runtime
(``on_n_plus_one``), closed with the runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core import QueryObserver
from ._alertmanager import AlertmanagerClient
from ._dispatch import Notifier
from ._email import EmailReceiver
from ._metrics import NotifyMetrics
from ._pagerduty import PagerDutyReceiver
from ._receiver import Receiver
from ._silence import Silences
from ._silence import silences as process_silences
from ._slack import SlackReceiver
from ._sources import AlertSources
from ._webhook import WebhookReceiver

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from ..core import QueryContext, QueryEvent, Settings
    from ..stats._nplusone import NPlusOneFinding


def receivers_from_settings(settings: Settings) -> list[Receiver]:
    receivers: list[Receiver] = []
    if settings.alert_webhook_url:
        receivers.append(WebhookReceiver(settings.alert_webhook_url))
    if settings.alert_slack_webhook_url:
        receivers.append(SlackReceiver(settings.alert_slack_webhook_url))
    if settings.alert_pagerduty_routing_key:
        receivers.append(
            PagerDutyReceiver(
                settings.alert_pagerduty_routing_key, url=settings.alert_pagerduty_url
            )
        )
    if settings.alert_smtp_host and settings.alert_smtp_from and settings.alert_smtp_to:
        to = [address.strip() for address in settings.alert_smtp_to.split(",") if address.strip()]
        receivers.append(
            EmailReceiver(
                settings.alert_smtp_host,
                settings.alert_smtp_port,
                settings.alert_smtp_from,
                to,
                starttls=settings.alert_smtp_starttls,
                tls=settings.alert_smtp_tls,
                username=settings.alert_smtp_username,
                password=(
                    settings.alert_smtp_password.get_secret_value()
                    if settings.alert_smtp_password is not None
                    else None
                ),
                ca_file=settings.alert_smtp_ca_file,
            )
        )
    return receivers


def alerting_configured(settings: Settings) -> bool:
    return bool(settings.alertmanager_url or receivers_from_settings(settings))


class NotifierSink(QueryObserver):
    name = "dbsight.notify"

    def __init__(
        self,
        settings: Settings,
        registry: CollectorRegistry | None = None,
        *,
        silences: Silences | None = None,
    ) -> None:
        if silences is None:
            from ..web._multiprocess import multiprocess_dir

            # the workers of one service share their silences (see `Silences.share`)
            process_silences.share(multiprocess_dir(settings))
        self.min_duration_s = settings.alert_slow_query_ms / 1000.0
        self._threshold_s = self.min_duration_s
        self.notifier = Notifier(
            receivers_from_settings(settings),
            alertmanager=(
                AlertmanagerClient(settings.alertmanager_url) if settings.alertmanager_url else None
            ),
            group_wait_s=settings.alert_group_wait_s,
            group_interval_s=settings.alert_group_interval_s,
            repeat_interval_s=settings.alert_repeat_interval_s,
            silences=silences if silences is not None else process_silences,
            metrics=NotifyMetrics(registry),
        )
        self.sources = AlertSources(
            self.notifier,
            service=settings.service_name,
            slow_query_ms=settings.alert_slow_query_ms,
            include_query_bodies=settings.include_query_bodies,
        )
        from ..advise._events import subscribe
        from ..ops.health import subscribe_health

        subscribe(self.sources.advice)
        subscribe_health(self.sources.health)

    @property
    def silences(self) -> Silences:
        return self.notifier.silences

    def after_query(self, ctx: QueryContext, event: QueryEvent) -> None:
        if event.duration_s >= self._threshold_s:
            self.sources.slow_statement(event)

    def on_error(self, ctx: QueryContext, event: QueryEvent) -> None:
        if event.duration_s >= self._threshold_s:
            self.sources.slow_statement(event)

    def on_n_plus_one(self, finding: NPlusOneFinding) -> None:
        self.sources.n_plus_one(finding)

    def flush(self, timeout_s: float, reason: str = "") -> None:
        """What is pending goes out now (at exit: the alerts of the process's last moments)."""
        self.notifier.flush(timeout_s, reason)

    def close(self) -> None:
        from ..advise._events import unsubscribe
        from ..ops.health import unsubscribe_health

        unsubscribe(self.sources.advice)
        unsubscribe_health(self.sources.health)
        self.notifier.close()
        self.notifier.metrics.close()


def notifier_sink(runtime_sinks: list[object]) -> NotifierSink | None:
    """The runtime's notifier, if alerting is configured."""
    for sink in runtime_sinks:
        if isinstance(sink, NotifierSink):
            return sink
    return None


def _sources() -> AlertSources | None:
    """The current runtime's alert sources (None when alerting is not configured)."""
    from .._runtime import get_runtime

    sink = notifier_sink(get_runtime().sinks)
    return sink.sources if sink is not None else None


def alert_backend(name: str, role: str, up: bool, in_rotation: bool, reason: str) -> None:
    """The proxy's backend monitor calls this when a backend's state changed."""
    sources = _sources()
    if sources is not None:
        sources.backend(name, role, up, in_rotation, reason)


def alert_breaker(name: str, is_open: bool) -> None:
    """The proxy calls this when the circuit breaker of backend ``name`` opened or closed."""
    sources = _sources()
    if sources is not None:
        sources.breaker(name, is_open)
