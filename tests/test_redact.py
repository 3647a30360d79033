"""redact: the value of every secret in the environment is replaced, wherever it is."""

from __future__ import annotations

from argalign.redact import REDACTED, scrub, secret_values
from support import KEY, TOKEN


def test_scrub_replaces_secrets_in_nested_dicts_lists_and_strings(secrets):
    value = {
        "note": f"Bearer {KEY} and {TOKEN}",
        "nested": [{"headers": {"Authorization": f"Bearer {KEY}"}}, ("tuple", TOKEN)],
        KEY: "a secret as a key",
        "count": 3, "ratio": 0.5, "none": None, "clean": "nothing to hide",
    }
    assert scrub(value) == {
        "note": f"Bearer {REDACTED} and {REDACTED}",
        "nested": [{"headers": {"Authorization": f"Bearer {REDACTED}"}}, ["tuple", REDACTED]],
        REDACTED: "a secret as a key",
        "count": 3, "ratio": 0.5, "none": None, "clean": "nothing to hide",
    }
    assert scrub(f"x{KEY}y") == f"x{REDACTED}y"
    assert scrub(42) == 42


def test_secret_values_come_from_secret_names_only(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_PASSWORD", "hunter2-long")
    monkeypatch.setenv("OTHER_API_TOKEN", "tok-1234567")
    monkeypatch.setenv("SHORT_KEY", "abc")  # too short to hide without mangling text
    monkeypatch.setenv("ARGALIGN_PLAIN", "not-a-secret-value")
    monkeypatch.setenv("HF_TOKEN", "hf_tok")
    monkeypatch.setenv("LONGER_KEY", "hf_tok-and-more")
    values = secret_values()
    assert {"hunter2-long", "tok-1234567", "hf_tok", "hf_tok-and-more"} <= set(values)
    assert "abc" not in values and "not-a-secret-value" not in values
    # The longest first, so a secret containing another is hidden whole.
    assert values.index("hf_tok-and-more") < values.index("hf_tok")
    assert scrub("hf_tok-and-more") == REDACTED
