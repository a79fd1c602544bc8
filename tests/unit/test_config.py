from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import Settings, get_settings
from pipelines.errors import ConfigurationError

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def test_env_example_documents_every_setting() -> None:
    text = ENV_EXAMPLE.read_text()
    for name, field in Settings.model_fields.items():
        env_name = (field.validation_alias or name).upper()
        assert env_name in text, f"{env_name} is missing from .env.example"


def test_universe_from_comma_separated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNIVERSE", " aapl,msft ,, ibm")
    assert Settings().universe == ["AAPL", "MSFT", "IBM"]


def test_live_trading_needs_explicit_confirmation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_MODE", "live")
    get_settings.cache_clear()
    with pytest.raises(ConfigurationError, match="LIVE_TRADING_CONFIRMED"):
        get_settings()
    monkeypatch.setenv("LIVE_TRADING_CONFIRMED", "true")
    get_settings.cache_clear()
    assert get_settings().trading_mode == "live"
    get_settings.cache_clear()


def test_malformed_setting_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_WEIGHT", "lots")
    get_settings.cache_clear()
    with pytest.raises(ConfigurationError, match="max_weight"):
        get_settings()
    get_settings.cache_clear()


def test_defaults_are_offline_and_paper() -> None:
    settings = Settings(_env_file=None)
    assert (settings.data_source, settings.broker, settings.trading_mode) == (
        "sample", "simulated", "paper")


def test_mlflow_ui_url_defaults_to_make_mlflow_ui_or_a_remote_tracking_server(monkeypatch) -> None:
    from pipelines.config import MLFLOW_UI_DEFAULT, Settings

    monkeypatch.delenv("MLFLOW_UI_URL", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert Settings(_env_file=None).mlflow_ui_url == MLFLOW_UI_DEFAULT == "http://127.0.0.1:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://mlflow.internal")
    assert Settings(_env_file=None).mlflow_ui_url == "https://mlflow.internal"
    monkeypatch.setenv("MLFLOW_UI_URL", "")  # as .env.example leaves it: not a way to hide it
    assert Settings(_env_file=None).mlflow_ui_url == "https://mlflow.internal"
    monkeypatch.setenv("MLFLOW_UI_URL", "http://ui.internal:5000")
    assert Settings(_env_file=None).mlflow_ui_url == "http://ui.internal:5000"
