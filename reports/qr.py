"""QR codes for questionnaire links, so a client can answer on their own phone in the
office. Encoded with reportlab's QR encoder (no network, no extra library); SVG for
screens and print.

The SVG is drawn with presentation attributes only (``fill=``, ``shape-rendering=``),
never ``style=``: the pages' Content-Security-Policy (``style-src 'self'``) blocks
inline styles, and an SVG whose colours were in ``style=`` rendered as a black square.
"""

from __future__ import annotations

import itertools

from reportlab.graphics.barcode import qrencoder

# The quiet zone the QR standard asks for around the symbol, in modules.
_QUIET_ZONE = 4


def _modules(url: str) -> list[list[bool]]:
    code = qrencoder.QRCode(None, qrencoder.QRErrorCorrectLevel.M)
    code.addData(url)
    code.make()
    return [[bool(cell) for cell in row] for row in code.modules]


def link_qr_svg(url: str, size: float = 240) -> str:
    """An SVG QR code of ``url``, ``size`` pixels square, error correction level M.

    One white square and one black path of the dark runs, in module units (the
    ``viewBox`` scales them), with a four-module quiet zone."""
    modules = _modules(url)
    count = len(modules) + 2 * _QUIET_ZONE
    runs = []
    for r, row in enumerate(modules):
        c = 0
        for dark, group in itertools.groupby(row):
            length = len(list(group))
            if dark:
                runs.append(f"M{c + _QUIET_ZONE} {r + _QUIET_ZONE}h{length}v1h-{length}z")
            c += length
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size:g}" height="{size:g}" '
        f'viewBox="0 0 {count} {count}" shape-rendering="crispEdges">'
        f'<rect width="{count}" height="{count}" fill="#ffffff"/>'
        f'<path fill="#000000" d="{"".join(runs)}"/></svg>')
