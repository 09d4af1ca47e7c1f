from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import load_settings
from monitor.errors import ConfigError


def test_yaml_and_toml_files_load(tmp_path: Path) -> None:
    y = tmp_path / "c.yaml"
    y.write_text("source:\n  kind: kafka\n  topics: [a, b]\nsegments:\n  max_segments: 50\n")
    t = tmp_path / "c.toml"
    t.write_text('[source]\nkind = "kafka"\ntopics = ["a", "b"]\n[segments]\nmax_segments = 50\n')
    for path in (y, t):
        s = load_settings(path)
        assert s.source.kind == "kafka"
        assert s.source.topics == ["a", "b"]
        assert s.segments.max_segments == 50


def test_environment_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    y = tmp_path / "c.yaml"
    y.write_text("history:\n  path: from-file.db\n")
    monkeypatch.setenv("DRIFTGATE_HISTORY__PATH", "from-env.db")
    monkeypatch.setenv("DRIFTGATE_SOURCE__TOPICS", '["t1","t2"]')
    s = load_settings(y)
    assert s.history.path == "from-env.db"
    assert s.source.topics == ["t1", "t2"]


def test_unknown_key_is_named(tmp_path: Path) -> None:
    y = tmp_path / "c.yaml"
    y.write_text("source:\n  kindd: kafka\n")
    with pytest.raises(ConfigError, match=r"unknown key 'source\.kindd'"):
        load_settings(y)


def test_bad_value_names_key_and_value(tmp_path: Path) -> None:
    y = tmp_path / "c.yaml"
    y.write_text("source:\n  batch_size: -5\n")
    with pytest.raises(ConfigError, match=r"source\.batch_size = -5"):
        load_settings(y)


def test_halt_below_warn_is_rejected() -> None:
    with pytest.raises(ConfigError, match="halt_effect"):
        load_settings(overrides={"decisions": {"warn_effect": 2.0, "halt_effect": 1.0}})


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid yaml"):
        load_settings(bad)


def test_secrets_are_masked_when_dumped() -> None:
    s = load_settings(overrides={"source": {"sasl_password": "hunter2"}})
    assert "hunter2" not in str(s.dump())
    assert s.source.sasl_password is not None
    assert s.source.sasl_password.get_secret_value() == "hunter2"


def test_example_config_in_repo_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "driftgate.example.yaml"
    s = load_settings(example)
    assert s.source.kind == "kafka"


def test_history_url_as_people_write_it_keeps_its_password_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DRIFTGATE_HISTORY__URL", "postgres://dg:hunter2@db.internal:5432/drift")
    s = load_settings(search_cwd=False)
    h = s.history
    assert h.url == "postgres://dg@db.internal:5432/drift"
    assert h.path is None
    assert h.database_url() == "postgres://dg:hunter2@db.internal:5432/drift"
    assert h.location == "postgres://dg:***@db.internal:5432/drift"
    assert "hunter2" not in str(s.dump())
    assert "hunter2" not in repr(s)
    assert s.dump()["history"]["password"] == "**********"


def test_history_password_from_its_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTGATE_HISTORY__URL", "postgresql://dg@db/drift")
    monkeypatch.setenv("DRIFTGATE_HISTORY__PASSWORD", "p@ss/word")
    h = load_settings(search_cwd=False).history
    assert h.database_url() == "postgresql://dg:p%40ss%2Fword@db/drift"
    assert h.location == "postgresql://dg:***@db/drift"


def test_history_url_and_path_together_or_a_bad_url_are_config_errors(tmp_path: Path) -> None:
    both = tmp_path / "c.yaml"
    both.write_text("history:\n  path: h.db\n  url: postgresql://u:secret@db/x\n")
    with pytest.raises(
        ConfigError, match=r"history\.url .* and history\.path .* are both set"
    ) as e:
        load_settings(both)
    assert "secret" not in str(e.value)
    for bad, needle in (("mysql://db/x", "not mysql"), ("::nope", "not a database URL")):
        with pytest.raises(ConfigError, match=needle):
            load_settings(overrides={"history": {"url": bad}}, search_cwd=False)
    default = load_settings(search_cwd=False).history
    assert (default.url, default.path, default.location) == (None, "driftgate.db", "driftgate.db")
