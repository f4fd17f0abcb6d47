"""The project's own Factur-X validator: what it accepts, what it names when it
refuses, how the renderer and ``pouracquit check`` use it, and that a broken
installation is a ConfigError, never a verdict on a document."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path

import pytest
from doc_samples import credit_note, invoice, receipt
from facturx import get_facturx_xml_from_pdf
from support import SELLER

from pouracquit.app import cli
from pouracquit.common.errors import ConfigError, DocumentInvalid
from pouracquit.common.money import Money
from pouracquit.core.document import DocumentSettings, Renderer
from pouracquit.core.document import renderer as renderer_module
from pouracquit.core.document import validate as v
from pouracquit.core.document.selfcheck import reference, tampered

GRAND_TOTAL = b"<ram:GrandTotalAmount>1080.00</ram:GrandTotalAmount>"


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return Renderer(SELLER, DocumentSettings()).render(receipt(invoice()))


@pytest.fixture(scope="module")
def xml(pdf: bytes) -> bytes:
    data = get_facturx_xml_from_pdf(pdf, check_xsd=False)[1]
    assert GRAND_TOTAL in data
    return data


def rules(found: list[v.Violation]) -> set[str]:
    return {x.rule for x in found}


def test_a_rendered_receipt_passes(pdf: bytes, xml: bytes) -> None:
    assert v.validate_pdf(pdf) == []
    assert v.validate_xml(xml, level="xsd") == []


def test_a_wrong_total_fails_br_co_15(xml: bytes) -> None:
    bad = xml.replace(GRAND_TOTAL, b"<ram:GrandTotalAmount>1090.00</ram:GrandTotalAmount>")
    found = v.validate_xml(bad, paid=False)
    assert "BR-CO-15" in rules(found)
    assert all(x.flag == "fatal" for x in found)
    first = next(x for x in found if x.rule == "BR-CO-15")
    assert first.source == "base" and "BT-112" in first.message and first.location
    # the schema alone cannot see a sum
    assert v.validate_xml(bad, paid=False, level="xsd") == []


def test_paid_means_nothing_left_to_pay(xml: bytes) -> None:
    unpaid = xml.replace(b"<ram:TotalPrepaidAmount>1080.00", b"<ram:TotalPrepaidAmount>1000.00").replace(
        b"<ram:DuePayableAmount>0.00", b"<ram:DuePayableAmount>80.00")
    assert {"BT-113", "BT-115"} <= rules(v.validate_xml(unpaid, level="xsd"))
    assert v.validate_xml(unpaid, paid=False, level="xsd") == []
    # a credit note (381) states money owed back: "fully paid" is not asked of it
    credit = unpaid.replace(b"<ram:TypeCode>380</ram:TypeCode>", b"<ram:TypeCode>381</ram:TypeCode>")
    assert not {"BT-113", "BT-115"} & rules(v.validate_xml(credit, level="xsd"))


def test_a_credit_note_not_refunded_yet_renders() -> None:
    open_credit = invoice().model_copy(update={"payments": (), "amount_paid": Money(amount="0", currency="EUR")})
    pdf = Renderer(SELLER, DocumentSettings()).render(credit_note(open_credit, reason="cancellation"))
    assert v.validate_pdf(pdf) == []


def test_a_schema_error_is_reported_alone(xml: bytes) -> None:
    broken = xml.replace(b"<ram:TypeCode>380</ram:TypeCode>", b"<ram:TypeCode>380</ram:TypeCode><ram:Colour/>", 1)
    found = v.validate_xml(broken, paid=False)
    assert rules(found) == {"XSD"} and "Colour" in found[0].message


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"%PDF-1.7 not really", "unreadable PDF"),
        (b"hello", "not a PDF"),
    ],
)
def test_not_a_facturx_pdf(data: bytes, reason: str) -> None:
    with pytest.raises(v.NotFacturX, match=reason):
        v.validate_pdf(data)


def test_not_facturx_xml() -> None:
    with pytest.raises(v.NotFacturX, match="well-formed"):
        v.validate_xml(b"<unclosed>")
    with pytest.raises(v.NotFacturX, match="DOCTYPE"):
        v.validate_xml(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')


def test_the_renderer_refuses_an_invalid_document(monkeypatch: pytest.MonkeyPatch) -> None:
    real = renderer_module.build_xml

    def wrong_total(data: dict, profile: str) -> bytes:  # type: ignore[type-arg]
        return real(data, profile).replace(GRAND_TOTAL, b"<ram:GrandTotalAmount>1090.00</ram:GrandTotalAmount>")

    monkeypatch.setattr(renderer_module, "build_xml", wrong_total)
    with pytest.raises(DocumentInvalid, match=r"^document fails EN16931 rules BR-CO-15, .*: ") as err:
        Renderer(SELLER, DocumentSettings()).render(receipt(invoice()))
    assert "BR-CO-15" in err.value.rules
    # validation off: the same document goes out (for those who validate elsewhere)
    assert Renderer(SELLER, DocumentSettings(validate="off")).render(receipt(invoice())).startswith(b"%PDF-")


def test_document_invalid_survives_the_trip_back_from_a_render_worker() -> None:
    back = pickle.loads(pickle.dumps(DocumentInvalid(("BR-CO-15", "BR-FR-05_BT-22_PMT"), "Invoice total...")))
    assert back.rules == ("BR-CO-15", "BR-FR-05_BT-22_PMT")
    assert str(back) == "document fails EN16931 rules BR-CO-15, BR-FR-05_BT-22_PMT: Invoice total..."


def test_concurrent_validations_agree(xml: bytes) -> None:
    bad = xml.replace(GRAND_TOTAL, b"<ram:GrandTotalAmount>1090.00</ram:GrandTotalAmount>")
    expected = {False: [], True: rules(v.validate_xml(bad))}
    seen: list[bool] = []

    def work() -> None:
        for i in range(6):
            found = rules(v.validate_xml(bad if i % 2 else xml))
            seen.append(found == (expected[True] if i % 2 else set()))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 24 and all(seen)


def test_a_broken_installation_is_a_config_error(tmp_path: Path) -> None:
    machinery = v._Machinery()
    broken = tmp_path / "broken.xslt"
    broken.write_text("<xsl:stylesheet version='2.0' xmlns:xsl='http://www.w3.org/1999/XSL/Transform'><oops",
                      encoding="utf-8")
    machinery._fr_ctc = str(broken)
    with pytest.raises(ConfigError, match="does not compile"):
        machinery.stylesheet("en16931", "fr-ctc")
    # a stylesheet that runs but asserts nothing would pass anything: caught by the self-check
    silent = tmp_path / "silent.xslt"
    silent.write_text(
        "<xsl:stylesheet version='2.0' xmlns:xsl='http://www.w3.org/1999/XSL/Transform'"
        " xmlns:svrl='http://purl.oclc.org/dsdl/svrl'>"
        "<xsl:template match='/'><svrl:schematron-output/></xsl:template></xsl:stylesheet>",
        encoding="utf-8")
    machinery._fr_ctc = str(silent)
    with pytest.raises(ConfigError, match="does not work"):
        machinery.stylesheet("en16931", "fr-ctc")


def test_the_reference_document_is_valid_and_its_tampered_copy_is_not() -> None:
    for profile, guideline in v.GUIDELINES.items():
        assert v.validate_xml(reference(guideline)) == [], profile
        found = v.validate_xml(tampered(guideline))
        assert found and all(x.source != "xsd" for x in found), profile


# -- pouracquit check ------------------------------------------------------------
def test_check_command_exit_codes(tmp_path: Path, pdf: bytes, xml: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.pdf"
    good.write_bytes(pdf)
    bad = tmp_path / "bad.xml"
    bad.write_bytes(xml.replace(GRAND_TOTAL, b"<ram:GrandTotalAmount>1090.00</ram:GrandTotalAmount>"))
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"%PDF-1.7 truncated")

    assert cli.main(["check", str(good), "--paid"]) == 0
    assert capsys.readouterr().out == f"{good}: OK\n"

    assert cli.main(["check", str(good), str(bad)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{good}: OK"
    assert f"{bad}: BR-CO-15: Invoice total amount with VAT (BT-112)" in "\n".join(out)

    assert cli.main(["check", str(good), str(junk), str(tmp_path / "missing.pdf")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"{junk}: cannot check: unreadable PDF: " + err[0].split("unreadable PDF: ", 1)[1],
                   f"{tmp_path / 'missing.pdf'}: cannot check: No such file or directory"]
    assert "Traceback" not in "\n".join(err)

    assert cli.main(["check", "--level", "xsd", str(bad)]) == 0  # the schema alone accepts a wrong sum
