"""One deployment, many companies: the [tenants] directory of company files laid over the
deployment's keys, the registry that disables and enables them, files added, changed and
removed while running, one bad file stopping only its company; `pouracquit tenants` and
`pouracquit --tenant`; and a one-company config behaving exactly as before ("default")."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import build_invoice
from cryptography.fernet import Fernet

from pouracquit.app.cli import main
from pouracquit.app.toml_out import dumps
from pouracquit.common.errors import ConfigError
from pouracquit.core.config import load_settings
from pouracquit.core.intake import new_receipt
from pouracquit.core.tenants import Tenants, laid_over, load_tenant
from pouracquit.sandbox.launch import DEMO_SELLER

DEPLOYMENT_ONLY = ("data_dir", "archive_dir", "time_factor", "log", "store", "admin", "pipeline", "tenants", "fleet",
                   "tenant")


def connection(name: str = "main") -> dict[str, Any]:
    """A connection that reaches no vendor: status and the registry never call one."""
    return {"name": name,
            "source": {"vendor": "hubspot", "base_url": "http://127.0.0.1:9", "access_token": {"env": "T_HS_TOKEN"}},
            "ledger": {"vendor": "quickbooks", "base_url": "http://127.0.0.1:9", "realm_id": "1", "client_id": "q",
                       "client_secret": {"env": "T_QB_SECRET"}}}


def company(name: str, **extra: Any) -> dict[str, Any]:
    return {"seller": {**DEMO_SELLER, "name": name}, "connections": [connection()], **extra}


def write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(data), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_STATE_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("T_HS_TOKEN", "pat-test")
    monkeypatch.setenv("T_QB_SECRET", "qb-secret")
    monkeypatch.delenv("POURACQUIT_TENANT", raising=False)
    monkeypatch.delenv("POURACQUIT_CONFIG", raising=False)


@pytest.fixture(autouse=True)
def _migrated(tmp_path: Path, sqlite_template: Path) -> None:
    """The store the configs below name, migrated already (a copy opens in milliseconds)."""
    (tmp_path / "data").mkdir(mode=0o700)
    shutil.copyfile(sqlite_template, tmp_path / "data" / "pouracquit.sqlite")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A firm's deployment: its relay and document defaults, two client companies."""
    write(tmp_path / "tenants" / "acme.toml", company("Acme SAS", document={"language": "en"}))
    write(tmp_path / "tenants" / "globex.toml", company("Globex SARL"))
    return write(tmp_path / "pouracquit.toml", {
        "data_dir": "data", "store": {"encryption_key": {"env": "T_STATE_KEY"}}, "tenants": {"dir": "tenants"},
        "document": {"language": "fr", "thank_you": "Merci, de la part du cabinet."},
        "email": {"host": "smtp.cabinet.example", "port": 2525, "reply_to": "compta@cabinet.example"},
    })


@pytest.fixture
def fleet(config: Path) -> Iterator[Tenants]:
    tenants = Tenants.open(load_settings(config))
    yield tenants
    tenants.close()


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


# -- the configuration ------------------------------------------------------------------------------
def test_laid_over_merges_tables_key_by_key_and_replaces_the_rest() -> None:
    base = {"document": {"language": "fr", "footer": "x"}, "bcc": ["a"], "email": {"host": "h"}}
    top = {"document": {"language": "en"}, "bcc": ["b"], "email": "off"}
    assert laid_over(base, top) == {"document": {"language": "en", "footer": "x"}, "bcc": ["b"], "email": "off"}
    assert base["document"] == {"language": "fr", "footer": "x"}  # the deployment's own is left alone


def test_a_companys_keys_are_laid_over_the_deployments(fleet: Tenants, config: Path) -> None:
    assert fleet.many and fleet.names() == ["acme", "globex"] and fleet.problems() == {}
    acme, globex = fleet.settings_of("acme"), fleet.settings_of("globex")
    assert (acme.tenant, acme.company.name, globex.company.name) == ("acme", "Acme SAS", "Globex SARL")
    assert acme.document.language == "en" and globex.document.language == "fr"  # its own, else the firm's
    assert acme.document.thank_you == globex.document.thank_you == "Merci, de la part du cabinet."
    assert acme.email.host == globex.email.host == "smtp.cabinet.example" and acme.email.port == 2525
    data = config.parent / "data"
    assert acme.data_dir == globex.data_dir == data and acme.store_url == fleet.settings.store_url
    assert (acme.archive, globex.archive) == (data / "archive" / "acme", data / "archive" / "globex")
    service = fleet.service("acme")
    assert (service.tenant, service.store.tenant, service.settings) == ("acme", "acme", acme)
    assert fleet.service("acme") is service and fleet.service("globex").store.tenant == "globex"


def test_the_archive_of_each_company_lies_under_the_deployments(config: Path) -> None:
    text = config.read_text(encoding="utf-8")
    config.write_text('archive_dir = "/srv/archive"\n' + text, encoding="utf-8")
    assert load_tenant(load_settings(config), "globex").archive == Path("/srv/archive/globex")


@pytest.mark.parametrize("key", DEPLOYMENT_ONLY)
def test_deployment_keys_are_refused_in_a_companys_file(config: Path, key: str) -> None:
    path = config.parent / "tenants" / "acme.toml"
    value = {"dir": "x"} if key == "tenants" else ({"level": "debug"} if key in ("log", "store", "admin", "pipeline",
                                                                                  "fleet") else "x")
    write(path, {**company("Acme SAS"), key: value})
    with pytest.raises(ConfigError) as caught:
        load_tenant(load_settings(config), "acme")
    message = str(caught.value)
    assert message == f"{path}: {key}: set for the whole deployment, not in a tenant's file"


@pytest.mark.parametrize("key", ["seller", "connections"])
def test_a_company_key_is_refused_in_the_deployment_file(config: Path, key: str) -> None:
    data = load_settings(config)._raw | {key: DEMO_SELLER if key == "seller" else [connection()]}
    write(config, data)
    with pytest.raises(ConfigError, match=rf"^{config}: .*{key} belongs in each tenant's file under "):
        load_settings(config)


def test_load_tenant_says_what_is_wrong(config: Path) -> None:
    deployment = load_settings(config)
    for name, says in (("nobody", r"no tenant 'nobody': .*nobody\.toml not found"),
                       ("Bad Name", r"tenant name 'Bad Name': use 1 to 63 lower-case letters"),
                       ("../acme", r"tenant name '../acme'")):
        with pytest.raises(ConfigError, match=says):
            load_tenant(deployment, name)
    (config.parent / "tenants" / "broken.toml").write_text("[seller\nname = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML"):
        load_tenant(deployment, "broken")


# -- the directory while running --------------------------------------------------------------------
def test_a_bad_file_stops_only_its_company(fleet: Tenants, config: Path) -> None:
    tenants = config.parent / "tenants"
    (tenants / "broken.toml").write_text("[seller\n", encoding="utf-8")
    write(tenants / "nosiren.toml", company("Sans SIREN") | {"seller": {**DEMO_SELLER, "siren": "123"}})
    assert sorted(fleet.refresh()) == ["broken", "nosiren"]
    problems = fleet.problems()
    assert set(problems) == {"broken", "nosiren"} and "not valid TOML" in problems["broken"]
    assert problems["nosiren"].startswith(f"{tenants / 'nosiren.toml'}: seller.siren:")
    assert all("\n" not in p for p in problems.values())
    assert fleet.names() == ["acme", "globex"]
    assert fleet.names(enabled_only=False) == ["acme", "broken", "globex", "nosiren"]
    with pytest.raises(ConfigError, match="not valid TOML"):
        fleet.service("broken")
    assert fleet.service("acme").settings.company.name == "Acme SAS"


def test_refresh_takes_up_added_changed_and_removed_files(fleet: Tenants, config: Path) -> None:
    tenants = config.parent / "tenants"
    assert fleet.refresh() == []  # nothing changed: nothing read again
    before = fleet.service("acme")
    write(tenants / "initech.toml", company("Initech SA"))
    write(tenants / "acme.toml", company("Acme Group SAS", document={"language": "en"}))
    (tenants / "globex.toml").unlink()
    assert sorted(fleet.refresh()) == ["acme", "globex", "initech"]
    assert fleet.names() == ["acme", "initech"]
    after = fleet.service("acme")
    assert after is not before and before.stop.is_set()  # the old wiring is stopped, the new one built
    assert after.settings.company.name == "Acme Group SAS"
    with pytest.raises(ConfigError, match="no tenant 'globex'"):
        fleet.settings_of("globex")


def test_disable_and_enable_through_the_registry(fleet: Tenants, config: Path) -> None:
    service = fleet.service("globex")
    fleet.set_enabled("globex", False)
    assert fleet.names() == ["acme"] and service.stop.is_set() and not fleet.records()["globex"].enabled
    other = Tenants.open(load_settings(config))  # another process of the fleet sees it too
    assert other.names() == ["acme"]
    (config.parent / "tenants" / "globex.toml").unlink()
    write(config.parent / "tenants" / "globex.toml", company("Globex SARL"))
    other.refresh()
    assert other.names() == ["acme"]  # a file written again does not enable a disabled company
    other.close()
    fleet.set_enabled("globex", True)
    assert fleet.names() == ["acme", "globex"]
    with pytest.raises(ConfigError, match=r"no tenant 'nobody'; known: acme, globex"):
        fleet.set_enabled("nobody", False)


def test_add_checks_the_file_and_places_it_for_the_service_only(fleet: Tenants, tmp_path: Path) -> None:
    source = write(tmp_path / "initech.toml", company("Initech SA"))
    settings = fleet.add("initech", source)
    placed = tmp_path / "tenants" / "initech.toml"
    assert settings.company.name == "Initech SA" and placed.read_text(encoding="utf-8") == source.read_text()
    assert stat.S_IMODE(placed.stat().st_mode) == 0o600 and "initech" in fleet.names()
    with pytest.raises(ConfigError, match=r"tenant 'acme' exists already"):
        fleet.add("acme", source)
    bad = write(tmp_path / "bad.toml", company("Bad SA") | {"store": {"url": "sqlite:///x"}})
    with pytest.raises(ConfigError, match=rf"^{bad}: store: set for the whole deployment"):
        fleet.add("bad", bad)
    with pytest.raises(ConfigError, match="tenant name 'Bad'"):
        fleet.add("Bad", source)
    (tmp_path / "broken.toml").write_text("seller = [", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        fleet.add("broken", tmp_path / "broken.toml")
    assert sorted(p.stem for p in (tmp_path / "tenants").iterdir()) == ["acme", "globex", "initech"]


def test_a_company_added_back_after_it_was_disabled_is_enabled(fleet: Tenants, tmp_path: Path) -> None:
    fleet.set_enabled("globex", False)
    (tmp_path / "tenants" / "globex.toml").unlink()
    fleet.refresh()
    fleet.add("globex", write(tmp_path / "globex.toml", company("Globex SARL")))
    assert fleet.names() == ["acme", "globex"]


# -- one company, as before -------------------------------------------------------------------------
def test_a_one_company_config_is_the_tenant_default(tmp_path: Path) -> None:
    path = write(tmp_path / "pouracquit.toml", {"data_dir": "data", "store": {"encryption_key": {"env": "T_STATE_KEY"}},
                                                **company("Atelier Lumière SAS")})
    settings = load_settings(path)
    assert settings.tenant == "default" and settings.tenants is None and settings.archive == tmp_path / "data/archive"
    assert load_tenant(settings, "default") is settings
    with pytest.raises(ConfigError, match="this config serves one company"):
        load_tenant(settings, "acme")
    single = Tenants.open(settings)
    try:
        assert not single.many and single.names() == ["default"] and single.refresh() == []
        assert single.service("default").store.tenant == "default" and single.settings_of("default") is settings
        with pytest.raises(ConfigError, match="serves one company"):
            single.add("acme", path)
    finally:
        single.close()


# -- the command line -------------------------------------------------------------------------------
def test_tenants_list_add_disable_enable(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (config.parent / "tenants" / "broken.toml").write_text("[seller\n", encoding="utf-8")
    assert main(["tenants", "list", "--config", str(config), "--json"]) == 0
    rows = {r["tenant"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["acme"]["state"] == "enabled" and rows["acme"]["connections"] == ["main"]
    assert rows["broken"]["state"] == "unusable" and "not valid TOML" in rows["broken"]["problem"]
    assert main(["tenants", "disable", "globex", "--config", str(config)]) == 0
    assert capsys.readouterr().out.strip() == "tenant globex disabled"
    assert main(["tenants", "list", "--config", str(config)]) == 0
    listed = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()}
    assert listed == {"acme": "enabled", "broken": "unusable", "globex": "disabled"}
    assert main(["tenants", "enable", "globex", "--config", str(config)]) == 0
    source = write(tmp_path / "initech.toml", company("Initech SA"))
    assert main(["tenants", "add", "initech", str(source), "--config", str(config)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "tenant initech added: main"
    assert main(["tenants", "add", "acme", str(source), "--config", str(config)]) == 2
    assert "tenant 'acme' exists already" in one_line(capsys)
    assert main(["tenants", "disable", "nobody", "--config", str(config)]) == 2
    assert "no tenant 'nobody'" in one_line(capsys)


def test_status_works_on_the_company_named_by_tenant(config: Path, fleet: Tenants,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    for name, count in (("acme", 1), ("globex", 2)):
        with fleet.service(name).store.unit() as u:
            for i in range(count):
                u.save(new_receipt("main", build_invoice(f"inv-{i}"), 1))
    for name, count in (("globex", 2), ("acme", 1)):  # each sees its own receipts, under the same name
        assert main(["--tenant", name, "status", "--config", str(config)]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert list(shown) == ["main"] and shown["main"]["receipts"] == {"pending": count}
    assert main(["status", "--config", str(config)]) == 2
    assert "this config serves several companies" in one_line(capsys)
    assert main(["--tenant", "nobody", "status", "--config", str(config)]) == 2
    assert "no tenant 'nobody'" in one_line(capsys)


def test_status_on_one_company_needs_no_tenant(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "pouracquit.toml", {"data_dir": "data", "store": {"encryption_key": {"env": "T_STATE_KEY"}},
                                                **company("Atelier Lumière SAS")})
    assert main(["status", "--config", str(path)]) == 0
    assert list(json.loads(capsys.readouterr().out)) == ["main"]
    assert main(["--tenant", "acme", "status", "--config", str(path)]) == 2
    assert "serves one company" in one_line(capsys)
    monkeypatch.setenv("POURACQUIT_TENANT", "default")
    assert main(["status", "--config", str(path)]) == 0
    capsys.readouterr()
    assert main(["tenants", "list", "--config", str(path)]) == 0
    assert capsys.readouterr().out.split() == ["default", "enabled", "main"]
    assert main(["tenants", "add", "acme", str(path), "--config", str(path)]) == 2
    assert "serves one company" in one_line(capsys)
