"""HTML -> PDF/A-3b with WeasyPrint, then the Factur-X XML embedded by factur-x.

WeasyPrint is given a fetcher that refuses every scheme but ``file:`` and
``data:``: a document is rendered offline, and an address slipped into an
invoice field can never make the daemon call out.
"""

from __future__ import annotations

from facturx import generate_from_binary
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher

PDF_VARIANT = "pdf/a-3b"


class LocalOnlyFetcher(URLFetcher):
    """A WeasyPrint fetcher for local files and data URIs only."""

    def __init__(self) -> None:
        super().__init__(allowed_protocols={"file", "data"}, allow_redirects=False, fail_on_errors=True)


class PdfWriter:
    """Holds what is costly to prepare (fonts, compiled CSS) across documents."""

    def __init__(self, css_text: str, base_url: str) -> None:
        self.fetcher = LocalOnlyFetcher()
        self.fonts = FontConfiguration()
        self.base_url = base_url
        self.css = CSS(string=css_text, font_config=self.fonts, url_fetcher=self.fetcher, base_url=base_url)

    def html_to_pdf(self, html: str) -> bytes:
        """Render one HTML document to PDF/A-3b bytes."""
        document = HTML(string=html, base_url=self.base_url, url_fetcher=self.fetcher)
        return document.write_pdf(
            stylesheets=[self.css], font_config=self.fonts, pdf_variant=PDF_VARIANT, uncompressed_pdf=False
        )


def embed_facturx(
    pdf: bytes, xml: bytes, *, title: str, subject: str, author: str, lang: str, kind: str = "facture acquittée"
) -> bytes:
    """Attach ``xml`` as factur-x.xml (AFRelationship Data) and write the Factur-X XMP.

    The XML was XSD-checked when it was built, so the library does not check it again.
    """
    metadata = {
        "author": author,
        "keywords": f"Factur-X, {kind}",
        "title": title,
        "subject": subject,
    }
    return generate_from_binary(
        pdf,
        xml,
        flavor="factur-x",
        check_xsd=False,
        check_schematron=False,
        pdf_metadata=metadata,
        lang=lang,
        afrelationship="data",
    )
