"""HubSpot notes in batches (BatchAttach) against the HubSpot sandbox: calls, the
answer matched whatever its order, partial failures, exactly once on replays."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from support import DictTokens, fast_context

from pouracquit.common.errors import PermanentError, RetryableError
from pouracquit.common.model import Invoice
from pouracquit.connectors.base import AttachOrder, BatchAttach, Document
from pouracquit.connectors.hubspot.source import HubSpotSource
from pouracquit.sandbox.hubspot.emulator import HubSpotSandbox

SCALE = 0.01


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubSpotSandbox]:
    monkeypatch.setenv("HS_TOKEN", HubSpotSandbox.DEMO_PRIVATE_APP_TOKEN)
    sb = HubSpotSandbox(time_factor=SCALE).start()
    sb.seed({"demo": {"count": 40, "seed": 7}})
    yield sb
    sb.stop()


def make_source(sb: HubSpotSandbox) -> HubSpotSource:
    return HubSpotSource.from_settings({"base_url": sb.url, "access_token": {"env": "HS_TOKEN"}},
                                       fast_context(DictTokens(), SCALE))


def invoices(sb: HubSpotSandbox) -> list[Invoice]:
    return [inv for page in make_source(sb).changes(None) for inv in page.invoices if inv.deal_id]


def order(invoice: Invoice, n: int, **changes: Any) -> AttachOrder:
    name = f"F-2026-{n:04d}-acquittee.pdf"
    return AttachOrder(key=f"pa-r{n}", ref=invoice.source_id, invoice=invoice,
                       document=Document(name=name, content=b"%PDF-1.7 " + name.encode()), **changes)


def notes(sb: HubSpotSandbox) -> dict[str, dict[str, Any]]:
    """Each note by the name of the file it carries."""
    state = sb.dump_state()
    path = {f["id"]: f["path"].rsplit("/", 1)[-1] for f in state["files"]}
    return {path[n["properties"]["hs_attachment_ids"]]: n for n in state["notes"]}


def test_notes_are_created_100_per_call_matched_whatever_the_order(sandbox: HubSpotSandbox) -> None:
    read = invoices(sandbox)
    orders = [order(read[i % len(read)], i) for i in range(130)]
    source = make_source(sandbox)  # a fresh process: deals come from the stored invoices, not read again
    assert isinstance(source, BatchAttach)
    sandbox.calls.clear()
    answer = source.attach_documents(orders)
    assert sandbox.call_counts()["by_endpoint"] == {"assoc_labels": 1, "files_upload": 130, "crm_batch_create": 2}
    made = notes(sandbox)
    assert len(made) == 130 and set(answer) == {o.key for o in orders}
    for o in orders:  # HubSpot's answer is shuffled: each id is the note carrying that order's file
        note = made[o.document.name]
        assert answer[o.key] == note["id"]
        assert note["associations"] == {"invoices": [o.ref], "deals": [o.invoice.deal_id]}


def test_a_refused_input_is_left_out_and_its_retry_writes_it_once(sandbox: HubSpotSandbox) -> None:
    read = invoices(sandbox)
    gone = read[1].model_copy(update={"deal_id": "999999999"})  # a deal deleted since: that note is refused
    orders = [order(read[0], 1), order(gone, 2), order(read[2], 3)]
    source = make_source(sandbox)
    answer = source.attach_documents(orders)
    assert set(answer) == {"pa-r1", "pa-r3"}  # the 207's failed input is not in results
    assert len(notes(sandbox)) == 2 and len(sandbox.dump_state()["files"]) == 3
    # one by one, with a lookup: its file is found, not uploaded again; the note is refused again
    retried = source.attach_documents([order(gone, 2, may_exist=True)])
    assert isinstance(retried["pa-r2"], PermanentError)
    assert len(sandbox.dump_state()["files"]) == 3 and len(notes(sandbox)) == 2


def test_a_lost_batch_answer_then_replay_makes_one_note_each(sandbox: HubSpotSandbox) -> None:
    read = invoices(sandbox)
    orders = [order(read[i], i) for i in range(5)]
    source = make_source(sandbox)
    sandbox.faults.scripted = [{"kind": "drop", "method": "POST", "path": "^/crm/v3/objects/notes/batch/create$",
                                "count": 1}]
    with pytest.raises(RetryableError):  # the notes were created, the answer was lost
        source.attach_documents(orders)
    assert len(notes(sandbox)) == 5
    sandbox.calls.clear()
    again = source.attach_documents([order(read[i], i, may_exist=True) for i in range(5)])
    made = notes(sandbox)
    assert len(made) == 5 and len(sandbox.dump_state()["files"]) == 5
    assert again == {o.key: made[o.document.name]["id"] for o in orders}
    assert "crm_batch_create" not in sandbox.call_counts()["by_endpoint"]


def test_the_emulator_refuses_more_than_100_inputs_and_bad_properties_whole(sandbox: HubSpotSandbox) -> None:
    url, auth = sandbox.url + "/crm/v3/objects/notes/batch/create", {
        "Authorization": f"Bearer {HubSpotSandbox.DEMO_PRIVATE_APP_TOKEN}"}
    note = {"properties": {"hs_timestamp": "2026-11-30T00:00:00Z", "hs_note_body": "x"}}
    too_many = requests.post(url, json={"inputs": [note] * 101}, headers=auth, timeout=5)
    assert too_many.status_code == 400 and too_many.json()["category"] == "VALIDATION_ERROR"
    no_time = requests.post(url, json={"inputs": [note, {"properties": {"hs_note_body": "y"}}]}, headers=auth,
                            timeout=5)
    assert no_time.status_code == 400 and not sandbox.dump_state().get("notes")
    ok = requests.post(url, json={"inputs": [note] * 3}, headers=auth, timeout=5)
    assert ok.status_code == 201 and ok.json()["status"] == "COMPLETE" and len(ok.json()["results"]) == 3
