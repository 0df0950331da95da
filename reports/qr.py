"""QR codes for questionnaire links, so a client can answer on their own phone in the
office. Drawn with reportlab (no network, no extra library); SVG for screens and print."""

from __future__ import annotations

from reportlab.graphics import renderSVG
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing


def link_qr_svg(url: str, size: float = 240) -> str:
    """An SVG QR code of ``url``, ``size`` points square, error correction level M."""
    widget = QrCodeWidget(url, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(widget)
    return renderSVG.drawToString(drawing)
