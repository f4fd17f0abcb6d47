"""Empty secrets are configuration errors, wherever they come from: an empty
admin token never opens the API to the network, an empty bearer is refused,
and an empty webhook key never verifies a signature."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pouracquit.common.errors import ConfigError, WebhookRejected
from pouracquit.common.secrets import SecretRef
from pouracquit.connectors.base import WebhookRequest
from pouracquit.connectors.hubspot.webhook import WebhookVerifier
from pouracquit.connectors.signatures import body_signature, verify_body
from pouracquit.core.config import AdminSettings

BODY = json.dumps({"eventNotifications": []}).encode()


@pytest.mark.parametrize("content", ["", "\n", "  \t \n"])
def test_an_empty_secret_file_names_the_key(tmp_path: Path, content: str) -> None:
    (tmp_path / "token").write_text(content)
    admin = AdminSettings.model_validate({"token": {"file": str(tmp_path / "token")}})
    assert admin.token is not None
    with pytest.raises(ConfigError, match=r"secret token is empty: .*file .*token"):
        admin.token.value()


@pytest.mark.parametrize("content", ["", " ", "\t\n"])
def test_an_empty_or_blank_environment_variable_is_refused(monkeypatch: pytest.MonkeyPatch, content: str) -> None:
    monkeypatch.setenv("T_EMPTY_SECRET", content)
    with pytest.raises(ConfigError, match="is empty: put the secret in the environment variable T_EMPTY_SECRET"):
        SecretRef(env="T_EMPTY_SECRET").value()


def test_an_empty_admin_token_never_binds_the_network(tmp_path: Path) -> None:
    from pouracquit.app.admin import admin_token

    (tmp_path / "token").write_text("\n")
    admin = AdminSettings.model_validate({"bind": "0.0.0.0:0", "token": {"file": str(tmp_path / "token")}})
    with pytest.raises(ConfigError, match=r"admin\.token: secret token is empty"):
        admin_token(admin)


@pytest.mark.parametrize("header", ["Bearer ", "Bearer", "bearer  ", "", "Basic s3cret-admin-token"])
def test_an_empty_bearer_is_refused(header: str) -> None:
    from pouracquit.app.admin import bearer_matches

    assert not bearer_matches(header, "s3cret-admin-token")
    assert bearer_matches("Bearer s3cret-admin-token", "s3cret-admin-token")


def test_an_empty_verifier_token_never_verifies(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("  \n")
    key = SecretRef.model_validate({"file": str(tmp_path / "key")})
    forged = WebhookRequest(method="POST", url="http://x/webhooks/quickbooks", body=BODY,
                            headers={"intuit-signature": body_signature("", BODY)})
    with pytest.raises(WebhookRejected, match="webhook_verifier_token: secret is empty"):
        verify_body(forged, "intuit-signature", key, "webhook_verifier_token")


def test_an_empty_hubspot_secret_never_verifies() -> None:
    with pytest.raises(WebhookRejected, match="empty"):
        WebhookVerifier(" ")
