"""Fonts prepared once per Renderer: the configured family trimmed to the scripts invoices use.

Without the HarfBuzz subsetter, WeasyPrint subsets every embedded font with
fontTools for every document, and decompiling the layout tables of a full
family such as DejaVu Sans costs about half a second per face.  We trim the
faces once (Latin, Greek, Cyrillic, punctuation, currency signs; no
kerning tables) and hand them to WeasyPrint as ``data:`` @font-face rules; the system
family stays the fallback for any other character, so a name in another
script still prints.
"""

from __future__ import annotations

import base64
import functools
import io
import logging
import shutil
import subprocess

from fontTools import subset
from fontTools.ttLib import TTFont

log = logging.getLogger(__name__)

# Scripts and signs an invoice prints; anything else falls back to the system font.
_RANGES = (
    (0x0020, 0x024F),  # Basic Latin .. Latin Extended-B
    (0x0370, 0x03FF),  # Greek
    (0x0400, 0x04FF),  # Cyrillic
    (0x1E00, 0x1EFF),  # Latin Extended Additional
    (0x2000, 0x206F),  # General Punctuation (incl. the narrow no-break space)
    (0x20A0, 0x20CF),  # Currency Symbols
    (0x2100, 0x215F),  # Letterlike symbols (№, ™)
    (0x2190, 0x21FF),  # Arrows
    (0x2212, 0x2212),  # minus sign
)
_FACES = (
    ("normal", "normal", ""),
    ("bold", "normal", ":weight=bold"),
    ("normal", "italic", ":slant=italic"),
    ("bold", "italic", ":weight=bold:slant=italic"),
)


def _font_file(family: str, style: str) -> str | None:
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return None
    try:
        out = subprocess.run(  # noqa: S603 - fixed binary, validated family name, no shell
            [fc_match, "--format=%{file}", f"{family}{style}"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    path = out.stdout.strip()
    return path if path.lower().endswith((".ttf", ".otf")) else None


def _trim(path: str) -> bytes:
    options = subset.Options(layout_features=[], hinting=False, desubroutinize=True, notdef_outline=True)
    # No GSUB/GPOS: WeasyPrint drops them from the embedded subset anyway, and decoding
    # them again for every document is what made rendering slow.
    options.drop_tables += ["GSUB", "GPOS", "SVG", "DSIG", "FFTM"]
    font = TTFont(path)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[cp for lo, hi in _RANGES for cp in range(lo, hi + 1)])
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


@functools.lru_cache(maxsize=8)
def font_faces(family: str) -> tuple[str, str]:
    """(@font-face CSS rules, CSS font-family list) for ``family``; computed
    once per process, however many renderers (connections, services) use it.

    Falls back to the plain system family when fontconfig cannot locate the
    files; documents are then correct, only slower to produce.
    """
    alias = f"Pouracquit {family}"
    rules = []
    seen: dict[str, str] = {}
    for weight, style, query in _FACES:
        path = _font_file(family, query)
        if path is None:
            continue
        if path not in seen:
            try:
                seen[path] = base64.b64encode(_trim(path)).decode("ascii")
            except Exception as err:  # noqa: BLE001 - any font problem means "use the system font"
                log.warning("could not prepare font %s: %s", path, err)
                continue
        rules.append(
            f'@font-face {{ font-family: "{alias}"; font-weight: {weight}; font-style: {style}; '
            f"src: url(data:font/ttf;base64,{seen[path]}); }}"
        )
    if not rules:
        return "", f'"{family}", sans-serif'
    return "\n".join(rules), f'"{alias}", "{family}", sans-serif'
