"""The strict environment readers of portal/env.py, and the settings refusing a value that does not parse."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_choice, env_float, env_int, env_json_object, env_list, env_str

VAR = "PORTAL_TEST_ENV_VALUE"


@pytest.mark.parametrize("raw, expected", [("1", True), ("TRUE", True), (" yes ", True), ("on", True),
                                           ("0", False), ("False", False), ("no", False), ("OFF", False)])
def test_env_bool_reads_the_boolean_words(monkeypatch, raw, expected):
    monkeypatch.setenv(VAR, raw)
    assert env_bool(VAR, default=not expected) is expected


@pytest.mark.parametrize("raw", ["ture", "2", "enabled", "y e s"])
def test_env_bool_refuses_a_value_that_is_not_a_boolean(monkeypatch, raw):
    monkeypatch.setenv(VAR, raw)
    with pytest.raises(ImproperlyConfigured, match=VAR):
        env_bool(VAR, default=False)


def test_unset_or_empty_means_the_default(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)
    assert env_bool(VAR, default=True) is True
    assert env_int(VAR, 7) == 7
    assert env_float(VAR, 0.5) == 0.5
    assert env_str(VAR, "x") == "x"
    monkeypatch.setenv(VAR, "  ")
    assert env_bool(VAR, default=True) is True
    assert env_int(VAR, 7) == 7
    assert env_choice(VAR, "json", ("json", "plain")) == "json"


def test_env_int_reads_a_whole_number_and_refuses_others(monkeypatch):
    monkeypatch.setenv(VAR, " 42 ")
    assert env_int(VAR, 1) == 42
    for bad in ("4.5", "ten", "1e3"):
        monkeypatch.setenv(VAR, bad)
        with pytest.raises(ImproperlyConfigured, match=f"{VAR}=.*not a whole number"):
            env_int(VAR, 1)


def test_env_int_and_env_float_enforce_bounds(monkeypatch):
    monkeypatch.setenv(VAR, "0")
    with pytest.raises(ImproperlyConfigured, match="below its minimum 1"):
        env_int(VAR, 10, minimum=1)
    monkeypatch.setenv(VAR, "3.5")
    with pytest.raises(ImproperlyConfigured, match="above its maximum 2"):
        env_float(VAR, 1.0, maximum=2)


def test_env_float_refuses_text_and_non_finite_numbers(monkeypatch):
    monkeypatch.setenv(VAR, "2.5")
    assert env_float(VAR, 1.0) == 2.5
    for bad in ("fast", "nan", "inf"):
        monkeypatch.setenv(VAR, bad)
        with pytest.raises(ImproperlyConfigured, match=VAR):
            env_float(VAR, 1.0)


def test_env_list_splits_commas_and_checks_choices(monkeypatch):
    monkeypatch.setenv(VAR, "devinbox, matrix,,")
    assert env_list(VAR, "x") == ["devinbox", "matrix"]
    assert env_list(VAR, choices=["devinbox", "matrix"]) == ["devinbox", "matrix"]
    with pytest.raises(ImproperlyConfigured, match="unknown 'matrix'"):
        env_list(VAR, choices=["devinbox"])
    monkeypatch.setenv(VAR, "")  # set but empty: explicitly nothing, not the default
    assert env_list(VAR, "devinbox") == []
    monkeypatch.delenv(VAR)
    assert env_list(VAR, "a,b") == ["a", "b"]


def test_env_choice_names_the_choices(monkeypatch):
    monkeypatch.setenv(VAR, "xml")
    with pytest.raises(ImproperlyConfigured, match="expected one of json, plain"):
        env_choice(VAR, "json", ("json", "plain"))


def test_env_json_object_refuses_bad_json_and_other_types(monkeypatch):
    monkeypatch.setenv(VAR, '{"slack": {"rate": 0.5}}')
    assert env_json_object(VAR) == {"slack": {"rate": 0.5}}
    monkeypatch.setenv(VAR, "{slack")
    with pytest.raises(ImproperlyConfigured, match="not valid JSON"):
        env_json_object(VAR)
    monkeypatch.setenv(VAR, "[1]")
    with pytest.raises(ImproperlyConfigured, match="must be a JSON object, got list"):
        env_json_object(VAR)


def test_settings_refuse_to_start_on_a_misspelt_boolean():
    """DEBUG=ture used to mean DEBUG off, silently; now the process does not start and says why."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", "DEBUG": "ture"}
    result = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-c", "import django; django.setup()"], cwd=root, env=env,
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "DEBUG='ture' is not a boolean" in result.stderr
