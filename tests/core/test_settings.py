import pytest

from dbsight.core import ConfigError, Settings, load_settings


def test_defaults_are_private_and_loopback_only():
    settings = Settings()
    assert settings.enabled
    assert settings.include_query_bodies is False
    assert settings.otlp_endpoint is None
    assert settings.sqlcommenter == "off"


def test_environment_variables_are_read_with_prefix(monkeypatch):
    monkeypatch.setenv("DBSIGHT_SLOW_QUERY_THRESHOLD_MS", "250")
    monkeypatch.setenv("DBSIGHT_ENVIRONMENT", "staging")
    settings = load_settings()
    assert settings.slow_query_threshold_s == pytest.approx(0.25)
    assert settings.effective_trace_sample_rate == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("env", "value", "field"),
    [
        ("DBSIGHT_SLOW_QUERY_THRESHOLD_MS", "-5", "slow_query_threshold_ms"),
        ("DBSIGHT_TRACE_SAMPLE_RATE", "1.5", "trace_sample_rate"),
        ("DBSIGHT_STATS_MAX_FINGERPRINTS", "3", "stats_max_fingerprints"),
        ("DBSIGHT_ENVIRONMENT", "qa", "environment"),
        ("DBSIGHT_OTLP_ENDPOINT", "collector:4318", "otlp_endpoint"),
    ],
)
def test_out_of_range_values_fail_naming_the_field(monkeypatch, env, value, field):
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert field in message and env in message and value in message


def test_unknown_field_is_rejected():
    with pytest.raises(ConfigError, match="slow_query_treshold_ms"):
        Settings(slow_query_treshold_ms=5)


def test_sample_rates_follow_environment_unless_set():
    assert Settings(environment="prod").effective_trace_sample_rate == pytest.approx(0.01)
    assert Settings(environment="dev").effective_log_sample_rate == pytest.approx(1.0)
    assert Settings(environment="prod", trace_sample_rate=0.5).effective_trace_sample_rate == 0.5
