"""redact: the value of every secret in the environment is replaced, wherever it is."""

from __future__ import annotations

import pytest

from argalign.core.redact import REDACTED, scrub, secret_values
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


@pytest.mark.parametrize("text, scrubbed", [
    ("http://user:PASS@host/v1", "http://***@host/v1"),
    ("HTTPS://user@host:8080/v1", "HTTPS://***@host:8080/v1"),
    ("postgresql://u:p%40ss@db.example:5432/mlflow", "postgresql://***@db.example:5432/mlflow"),
    ("Connection error: http://a:b@127.0.0.1:9/v1/chat/completions, retrying",
     "Connection error: http://***@127.0.0.1:9/v1/chat/completions, retrying"),
    ("'http://x:y@h' and 'http://z:w@k'", "'http://***@h' and 'http://***@k'"),
    ("https://h/v1?api_key=SECRET&model=m", "https://h/v1?api_key=***&model=m"),
    ("https://h/v1?model=m&token=SECRET#top", "https://h/v1?model=m&token=***#top"),
    ("http://h/?access_token=S1&Password=S2&apikey=S3&sig=S4&key=S5",
     "http://h/?access_token=***&Password=***&apikey=***&sig=***&key=***"),
    ("https://huggingface.co/datasets/org/x", "https://huggingface.co/datasets/org/x"),
    ("mail me: someone@example.org", "mail me: someone@example.org"),
    ("https://h/v1?model=m&monkey=1", "https://h/v1?model=m&monkey=1"),
])
def test_scrub_hides_credentials_in_urls_without_secrets_in_the_environment(monkeypatch, text,
                                                                            scrubbed):
    # No secret in the environment: URLs are scrubbed all the same.
    monkeypatch.setattr("argalign.core.redact.secret_values", lambda: [])
    assert scrub(text) == scrubbed
    assert scrub({"api_base": [text]}) == {"api_base": [scrubbed]}


def test_the_tracking_uri_error_hides_the_password(monkeypatch):
    from argalign import tracking
    from argalign.core.errors import ConfigError

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://u:SECRETPASS@db.example/mlflow")
    with pytest.raises(ConfigError) as caught:
        tracking.tracking_uri()
    assert "SECRETPASS" not in str(caught.value)
    assert "postgresql://***@db.example/mlflow" in str(caught.value)


def test_every_log_record_is_scrubbed_whichever_handler_prints_it():
    """A library's own handler (LiteLLM and MLflow print through theirs) prints scrubbed text."""
    import io
    import logging

    from argalign.core.redact import scrub_log_records

    url = "http://user:SECRETPASS@127.0.0.1:9/v1"
    stream = io.StringIO()
    library = logging.getLogger("some_library.http")
    handler = logging.StreamHandler(stream)
    library.addHandler(handler)
    library.propagate, library.level = False, logging.DEBUG
    factory = logging.getLogRecordFactory()
    try:
        scrub_log_records()
        scrub_log_records()  # once is enough; twice changes nothing
        library.debug("POST %s", url)
        try:
            raise ConnectionError(f"cannot connect to {url}")
        except ConnectionError:
            library.exception("request failed")
        library.debug("a format string %s %s", "with one argument")  # reported, not raised
    finally:
        logging.setLogRecordFactory(factory)
        library.removeHandler(handler)
    printed = stream.getvalue()
    assert "POST http://***@127.0.0.1:9/v1" in printed
    assert "ConnectionError: cannot connect to http://***@127.0.0.1:9/v1" in printed
    assert "SECRETPASS" not in printed
