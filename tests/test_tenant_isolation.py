"""Two companies in one state store, every key colliding: both call their connection
"main" and their CRM shares record ids. Whatever path reads or writes the store (the
Store, its Unit, the credentials, the e-mail, dunning, survey, insight and audit
queries), one company's token or receipt is never read, changed or counted through
the other's, and each keeps its own gapless numbers and its own audit chain."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import build_invoice
from cryptography.fernet import Fernet
from engine_fakes import FakeLedger, FakeRenderer, FakeSource
from sqlalchemy import delete, func, insert, update
from sqlalchemy import select as core_select
from sqlmodel import Session, select

from pouracquit.app.commands import find_receipt
from pouracquit.app.refusals import NotFound
from pouracquit.common.model import Invoice
from pouracquit.connectors.base import Page
from pouracquit.core.archive import Archive
from pouracquit.core.audit import audit, document_matches
from pouracquit.core.config import NumberingSettings, PipelineSettings
from pouracquit.core.dunning.ladder import Due
from pouracquit.core.dunning.plan import Chase, open_snapshots, plan, steps_written
from pouracquit.core.dunning.send import _intent, dunning_counts, log_unlogged, mark_interrupted
from pouracquit.core.dunning.settings import DunningSettings
from pouracquit.core.insight.facts import invoice_facts, issued, snapshots
from pouracquit.core.intake import IntakeReport, new_receipt, snapshot_of, take_page
from pouracquit.core.pipeline import Pipeline, Wiring
from pouracquit.core.survey import SurveyRefused, answered, record_answer, survey_counts, survey_scores
from pouracquit.state.chain import verify_chain
from pouracquit.state.credentials import CredentialStore
from pouracquit.state.store import Store
from pouracquit.state.tables import ConnectionState, DunningReminder, Event, Receipt, Snapshot
from pouracquit.state.tenancy import TenantBreach

C = "main"  # both companies' connection
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
DUE = date(2026, 11, 2)


@pytest.fixture
def pair(store: Store) -> tuple[Store, Store]:
    return store.for_tenant("acme"), store.for_tenant("globex")


def customer(store: Store) -> str:
    return f"Client de {store.tenant}"


def invoice(store: Store, sid: str = "inv-1", **extra: object) -> Invoice:
    """The same CRM record id in both companies, each with its own customer."""
    return build_invoice(sid, customer=customer(store), **extra)  # type: ignore[arg-type]


def seed(store: Store, *sids: str) -> list[Receipt]:
    """What a sync leaves: snapshots, receipts, a quarantine, a cursor, an audit entry."""
    made = []
    with store.unit() as u:
        for sid in sids:
            inv = invoice(store, sid)
            u.put_snapshot(snapshot_of(C, inv, 1))
            made.append(new_receipt(C, inv, 1))
            u.save(made[-1])
            u.log(C, "paid", source_id=sid, receipt_id=made[-1].id, tenant_was=store.tenant)
        u.quarantine(C, "bad-1", f"refused for {store.tenant}")
        u.set_cursor(C, f"cursor-{store.tenant}")
    return made


def only_own(store: Store, rows: list[Receipt]) -> bool:
    return bool(rows) and all(r.tenant == store.tenant and r.customer == customer(store) for r in rows)


# -- reading --------------------------------------------------------------------------------------
def test_every_read_of_the_store_sees_its_own_company(pair: tuple[Store, Store]) -> None:
    acme, globex = pair
    mine, theirs = seed(acme, "inv-1", "inv-2"), seed(globex, "inv-1")
    for store, own in ((acme, mine), (globex, theirs)):
        ids = {r.id for r in own}
        assert {r.id for r in store.receipts()} == ids and only_own(store, store.receipts(C, "pending"))
        assert {r.id for r in store.search_receipts("client de")} == ids
        assert store.receipt_counts() == {(C, "pending"): len(own)}
        assert set(store.due(C, NOW)) == ids
        assert store.connection_states()[C].cursor == f"cursor-{store.tenant}"
        (quarantined,) = store.quarantined(C)
        assert quarantined.reason == f"refused for {store.tenant}"
        assert {e.receipt_id for e in store.events()} == ids and store.events(kind="paid", connection=C)
        snap = store.snapshot(C, "inv-1")
        assert snap is not None and snap.tenant == store.tenant
        found = store.receipt_of(C, "inv-1", 1)
        assert found is not None and found.id in ids
    # the other company's receipt is unknown by its id, its prefix, and by search
    for store, other in ((acme, theirs[0]), (globex, mine[0])):
        assert store.receipt(other.id) is None and store.receipt(other.id[:6]) is None
        assert store.search_receipts(other.id) == [] and store.events(receipt_id=other.id) == []
    assert globex.receipt("") is not None  # its one receipt is unambiguous: acme's two are not seen
    with pytest.raises(NotFound):  # the CLI's lookup (receipts show, retry...)
        find_receipt(SimpleNamespace(store=acme), theirs[0].id)  # type: ignore[arg-type]
    with acme.unit() as u:
        u.update_receipt(mine[0].id, None, ledger_id="L-1")
    assert [r.id for r in acme.receipts_booked_as(C, "L-1")] == [mine[0].id] and not globex.receipts_booked_as(C, "L-1")


def test_leases_of_another_company_cannot_be_taken_renewed_or_released(pair: tuple[Store, Store]) -> None:
    acme, globex = pair
    (mine,), (theirs,) = seed(acme, "inv-1"), seed(globex, "inv-1")
    until = NOW + timedelta(days=365)
    assert acme.claim(theirs.id, "acme-worker", until) is None
    assert globex.claim(theirs.id, "globex-worker", NOW - timedelta(seconds=1)) is not None
    assert not acme.renew(theirs.id, "globex-worker", until)
    acme.release(theirs.id, "globex-worker")
    held = globex.receipt(theirs.id)
    assert held is not None and held.lease_owner == "globex-worker"
    assert [r.id for r in globex.stale_leases(NOW)] == [theirs.id] and acme.stale_leases(NOW) == []
    assert acme.claim(mine.id, "acme-worker", until) is not None


def test_a_webhook_seen_by_one_company_is_no_replay_for_the_other(pair: tuple[Store, Store]) -> None:
    acme, globex = pair
    soon, later = NOW + timedelta(minutes=1), NOW + timedelta(hours=1)
    assert globex.first_sight(C, "sig", NOW, soon) and acme.first_sight(C, "sig", NOW, later)
    assert not acme.first_sight(C, "sig", NOW, later) and not globex.first_sight(C, "sig", NOW, soon)
    assert acme.first_sight(C, "other", NOW + timedelta(minutes=2), later)  # clears acme's expired ones only
    assert not globex.first_sight(C, "sig", NOW + timedelta(seconds=30), soon)


def test_unit_writes_reach_only_their_own_company(pair: tuple[Store, Store]) -> None:
    acme, globex = pair
    (mine,), (theirs,) = seed(acme, "inv-1"), seed(globex, "inv-1")
    with acme.unit() as u:
        with pytest.raises(LookupError):
            u.update_receipt(theirs.id, None, status="done")
        with pytest.raises(LookupError):
            u.requeue(theirs.id)
        u.put_snapshot(snapshot_of(C, invoice(acme, paid="0"), 0))
        u.quarantine(C, "bad-1", "acme again")
        u.release(C, "bad-1")
        u.record_document("ab" * 32, mine.id, "ab/ab/x.pdf", 10)
    with globex.unit() as u:
        u.record_document("ab" * 32, theirs.id, "ab/ab/x.pdf", 10)  # same bytes, its own record
        assert u.get(Receipt, mine.id) is None and u.receipt_of(C, "inv-1", 1).id == theirs.id  # type: ignore[union-attr]
    assert globex.receipt(theirs.id).status == "pending"  # type: ignore[union-attr]
    assert globex.snapshot(C, "inv-1").paid_version == 1 and acme.snapshot(C, "inv-1").paid_version == 0  # type: ignore[union-attr]
    assert acme.quarantined() == [] and [q.reason for q in globex.quarantined()] == ["refused for globex"]


def test_numbers_and_audit_chains_are_each_companys_own(pair: tuple[Store, Store]) -> None:
    acme, globex = pair
    got: dict[str, list[int]] = {"acme": [], "globex": []}
    for _ in range(3):  # interleaved, so a shared series or chain would show
        for store in (acme, globex):
            with store.unit() as u:
                got[store.tenant].append(u.next_number("default:2026-"))
                u.log(C, "numbered", n=got[store.tenant][-1])
    assert got == {"acme": [1, 2, 3], "globex": [1, 2, 3]}
    for store in pair:
        events = store.events()
        assert [e.seq for e in events] == [1, 2, 3] and verify_chain(events) == []
        assert {e.tenant for e in events} == {store.tenant}
    with globex.unit() as u:  # tampering with one chain breaks only that one
        row = u.get(Event, 2)
        row.data = row.data.replace("2", "9")
    assert verify_chain(acme.events()) == [] and [b.seq for b in verify_chain(globex.events())] == [2]


def test_a_new_companys_first_numbers_taken_at_once_by_several_workers(pair: tuple[Store, Store]) -> None:
    """Every company starts a fresh series, and fleet workers take its first numbers together:
    the one that creates the series row must not make the others fail (on PostgreSQL the
    second INSERT of the row waits for the first, then hits its primary key)."""
    got: list[int] = []
    errors: list[Exception] = []
    start = threading.Barrier(4)

    def take(store: Store) -> None:
        start.wait()
        try:
            with store.unit() as u:
                got.append(u.next_number("default:2026-"))
        except Exception as exc:  # collected: the assertion names it
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(store,)) for store in (*pair, *pair)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and sorted(got) == [1, 1, 2, 2]


def test_a_token_is_never_returned_to_another_company(pair: tuple[Store, Store]) -> None:
    key = Fernet.generate_key()
    acme_tokens, globex_tokens = (CredentialStore(s, C, lambda: Fernet(key)) for s in pair)
    acme_tokens.put("main.refresh_token", "acme-secret")
    assert globex_tokens.get("main.refresh_token") is None
    globex_tokens.put("main.refresh_token", "globex-secret")
    acme_tokens.put("main.access_token", "acme-access")
    assert (acme_tokens.get("main.refresh_token"), globex_tokens.get("main.refresh_token")) == ("acme-secret",
                                                                                                "globex-secret")
    assert globex_tokens.get("main.access_token") is None


def test_email_queries_stay_within_their_company(pair: tuple[Store, Store]) -> None:
    acme, globex = pair
    (mine,), (theirs,) = seed(acme, "inv-1"), seed(globex, "inv-1")
    for store, row in ((acme, mine), (globex, theirs)):
        with store.unit() as u:
            u.update_receipt(row.id, None, email_status="sent", email_error=None)
    fresh, stale = acme.claim_email_logs(C, "claim:acme", 10, NOW)
    assert [r.id for r in fresh] == [mine.id] and stale == []
    acme.settle_email_logs("claim:acme", {theirs.id: "log-x", mine.id: "log-a"}, {})
    assert globex.receipt(theirs.id).email_log_id is None  # type: ignore[union-attr]
    assert acme.receipt(mine.id).email_log_id == "log-a"  # type: ignore[union-attr]
    assert acme.email_counts() == {(C, "sent"): 1} == globex.email_counts()
    with globex.unit() as u:
        u.update_receipt(theirs.id, None, email_status="rejected", email_error="550")
    assert acme.email_problems(C) == [] and [r.id for r in globex.email_problems(C)] == [theirs.id]


def test_survey_answers_are_each_companys_own(pair: tuple[Store, Store]) -> None:
    acme, globex = pair
    (mine,), (theirs,) = seed(acme, "inv-1"), seed(globex, "inv-1")
    with pytest.raises(SurveyRefused):
        record_answer(acme, theirs.id, 1, "not mine", NOW)
    assert record_answer(globex, theirs.id, 5, "", NOW) and not answered(acme, theirs.id)
    assert record_answer(acme, mine.id, 2, "", NOW)
    assert survey_counts(acme) == {C: {"answers": 1, "average": "2.00"}}
    assert [(s.customer, s.average) for s in survey_scores(globex, C)] == [(customer(globex), Decimal("5.00"))]


def test_insight_reads_only_its_company(pair: tuple[Store, Store]) -> None:
    acme, globex = pair
    seed(acme, "inv-1", "inv-2")
    seed(globex, "inv-1")
    assert set(snapshots(acme, C)) == {"inv-1", "inv-2"} and set(snapshots(globex, C)) == {"inv-1"}
    assert [i.invoice.customer.name for i in issued(globex, C)] == [customer(globex)]
    facts, unread = invoice_facts(globex, FakeSource(), C)  # paid ones come from the store, not the CRM
    assert [f.customer for f in facts] == [customer(globex)] and unread == []


def test_dunning_plans_and_sends_within_its_company(pair: tuple[Store, Store]) -> None:
    acme, globex = pair
    crm = FakeSource()
    with acme.unit() as u:
        crm.put(invoice(acme, paid=None, due_date=DUE))
        u.put_snapshot(snapshot_of(C, crm.get("inv-1"), 0))
    assert [s.source_id for s in open_snapshots(acme, C)] == ["inv-1"] and open_snapshots(globex, C) == []
    assert plan(globex, crm, C, DunningSettings(), DUE + timedelta(days=1)) == []
    (chase,) = plan(acme, crm, C, DunningSettings(), DUE + timedelta(days=1))
    assert _intent(acme, chase, NOW) is not None
    assert steps_written(acme, C) and steps_written(globex, C) == {}
    assert dunning_counts(globex) == {} and dunning_counts(acme) == {C: {"sending": 1}}
    with acme.unit() as u:
        u.session.exec(update(DunningReminder).values(updated_at=NOW - timedelta(days=1)))  # type: ignore[call-overload]
    assert mark_interrupted(globex, C) == 0 and mark_interrupted(acme, C) == 1
    with acme.unit() as u:
        u.session.exec(update(DunningReminder).values(status="sent"))  # type: ignore[call-overload]
    assert log_unlogged(globex, C, FakeSource(), "x@y.example") == 0  # type: ignore[arg-type]


def test_the_same_dunning_step_of_the_same_record_goes_out_in_each_company(pair: tuple[Store, Store]) -> None:
    """Both chase their own "inv-1" on "main": a reminder id made of (connection, record, step)
    alone is the same in both, and the second one's intent fails on the first's row (never sent)."""
    chase = Chase(C, "inv-1", Due(0, "courtois", 1), recipient="a@b.example", amount_due=Decimal("240.00"),
                  currency="EUR", due_date=DUE)
    assert all(_intent(store, chase, NOW) is not None for store in pair)


def test_archive_verify_is_per_company(pair: tuple[Store, Store], tmp_path: Path) -> None:
    acme, globex = pair
    roots = {s.tenant: tmp_path / "archive" / s.tenant for s in pair}
    for store in pair:
        (row,) = seed(store, "inv-1")
        sha, path = Archive(roots[store.tenant]).store(f"%PDF {store.tenant}".encode())
        with store.unit() as u:
            u.record_document(sha, row.id, str(path), path.stat().st_size)
            u.update_receipt(row.id, None, document_sha256=sha)
    assert audit(acme, roots["acme"]).ok and audit(globex, roots["globex"]).ok
    acme_doc = acme.receipts()[0]
    assert document_matches(acme, acme_doc, roots["acme"]) and not document_matches(globex, acme_doc, roots["acme"])
    (Archive(roots["globex"]).path_for(globex.receipts()[0].document_sha256 or "")).chmod(0o600)
    Archive(roots["globex"]).path_for(globex.receipts()[0].document_sha256 or "").write_bytes(b"altered")
    assert audit(acme, roots["acme"]).ok and not audit(globex, roots["globex"]).ok
    report = audit(acme, roots["acme"])
    assert (report.documents, report.events) == (1, 1)


def test_two_companies_with_the_same_crm_run_apart(pair: tuple[Store, Store], tmp_path: Path) -> None:
    """Intake and the pipeline for both, interleaved, on CRM records with the same ids."""
    ledgers: dict[str, FakeLedger] = {}
    for _round in range(2):
        for store in pair:
            source = FakeSource()
            source.put(*(invoice(store, f"inv-{i}", number="") for i in range(3)))
            with store.unit() as u:
                take_page(u, C, Page(invoices=list(source.records.values()), cursor="3"), IntakeReport())
            ledger = ledgers.setdefault(store.tenant, FakeLedger())
            wiring = Wiring(connection=C, source=source, ledger=ledger, store=store, renderer=FakeRenderer(),  # type: ignore[arg-type]
                            archive=Archive(tmp_path / store.tenant), numbering=NumberingSettings(),
                            policy=PipelineSettings(workers=1))
            Pipeline(wiring, f"{store.tenant}-worker").drain()
    for store in pair:
        done = store.receipts()
        assert len(done) == 3 and {r.status for r in done} == {"done"} and only_own(store, done)
        assert sorted(int((r.number or "")[-6:]) for r in done) == [1, 2, 3]
        assert len(ledgers[store.tenant].orders) == 3
        assert audit(store, tmp_path / store.tenant).ok


# -- the session guard ----------------------------------------------------------------------------
def test_a_session_without_a_tenant_may_not_touch_tenant_rows(pair: tuple[Store, Store]) -> None:
    acme, _globex = pair
    (mine,) = seed(acme, "inv-1")
    attempts = [
        lambda s: s.exec(select(Receipt)).all(),
        lambda s: s.get(Receipt, mine.id),
        lambda s: s.exec(update(Receipt).values(status="done")),
        lambda s: s.exec(delete(Snapshot)),
        lambda s: (s.add(ConnectionState(tenant="acme", name="x")), s.flush()),
    ]
    for attempt in attempts:
        with Session(acme.engine) as session, pytest.raises(TenantBreach):
            attempt(session)
    assert acme.receipt(mine.id).status == "pending"  # type: ignore[union-attr]


def test_a_session_of_one_company_cannot_write_the_others_rows(pair: tuple[Store, Store]) -> None:
    acme, globex = pair
    (mine,), (theirs,) = seed(acme, "inv-1"), seed(globex, "inv-1")
    with acme.session() as session, pytest.raises(TenantBreach):
        session.add(ConnectionState(tenant="globex", name="other"))
        session.flush()
    with acme.session() as session, pytest.raises(TenantBreach):
        row = session.get(Receipt, mine.id)
        row.tenant = "globex"  # type: ignore[union-attr]
        session.flush()
    with acme.session() as session, pytest.raises(TenantBreach):
        session.merge(globex.receipt(theirs.id))
        session.flush()
    stolen = globex.receipt(theirs.id)
    stolen.status = "done"  # type: ignore[union-attr]
    with pytest.raises(TenantBreach), acme.unit() as u:  # a row read through one store, saved through another
        u.save(stolen)  # type: ignore[arg-type]
    with acme.session() as session:  # ORM updates and deletes reach its own rows only
        assert session.exec(update(Receipt).values(status="failed")).rowcount == 1  # type: ignore[call-overload]
        session.exec(update(Receipt).where(Receipt.id == theirs.id).values(status="done"))  # type: ignore[call-overload]
        session.exec(delete(Snapshot).where(Snapshot.source_id == "inv-1"))  # type: ignore[call-overload]
        session.commit()
    assert globex.receipt(theirs.id).status == "pending" and globex.snapshot(C, "inv-1") is not None  # type: ignore[union-attr]
    assert acme.receipt(mine.id).status == "failed" and acme.snapshot(C, "inv-1") is None  # type: ignore[union-attr]


# The guard's gaps found by this suite (state/tenancy.py): each test below fails until it is closed.
def test_an_orm_insert_cannot_write_another_companys_row(pair: tuple[Store, Store]) -> None:
    acme, globex = pair
    row = {"tenant": "globex", "name": "planted", "runs": 0}
    with acme.session() as session, pytest.raises(TenantBreach):
        session.exec(insert(ConnectionState).values(**row))  # type: ignore[call-overload]
        session.commit()
    with Session(acme.engine) as session, pytest.raises(TenantBreach):
        session.exec(insert(ConnectionState).values(**row))  # type: ignore[call-overload]
        session.commit()
    assert "planted" not in globex.connection_states()


def test_an_orm_update_cannot_move_or_change_another_companys_rows(pair: tuple[Store, Store]) -> None:
    acme, globex = pair
    seed(acme, "inv-1")
    (theirs,) = seed(globex, "inv-2")
    for statement, params in (
        (update(Receipt).values(tenant="globex"), None),  # acme's receipt handed to globex
        (update(Receipt), [{"id": theirs.id, "status": "done"}]),  # bulk update by primary key
        (update(ConnectionState), [{"tenant": "globex", "name": C, "cursor": "planted"}]),
    ):
        with acme.session() as session:
            try:
                session.execute(statement, params)
                session.commit()
            except TenantBreach:
                pass
    assert [r.id for r in globex.receipts()] == [theirs.id]
    assert globex.receipt(theirs.id).status == "pending"  # type: ignore[union-attr]
    assert globex.connection_states()[C].cursor == "cursor-globex"


def test_subqueries_select_from_and_plain_tables_are_scoped_too(pair: tuple[Store, Store]) -> None:
    acme, globex = pair
    seed(globex, "inv-1", "inv-2")
    with acme.unit() as u:
        u.log(C, "started")
    with acme.session() as session:
        assert session.exec(core_select(func.count()).select_from(Receipt)).one() == (0,)  # type: ignore[call-overload]
        counted = core_select(func.count(Receipt.id)).scalar_subquery()  # type: ignore[arg-type]
        assert session.exec(core_select(Event.seq, counted)).all() == [(1, 0)]  # type: ignore[call-overload]
        assert session.exec(select(Event.seq).where(select(Receipt.id).exists())).all() == []
        try:  # the table, not the model: filtered or refused, never read across
            rows = session.exec(core_select(Receipt.__table__)).all()  # type: ignore[call-overload, attr-defined]
        except TenantBreach:
            rows = []
    assert rows == []
