"""PDF builders shared by the ingest bench's corpus (bench/corpus.py) and the test suite's hostile corpus
(tests/unit/adapters/corpus.py): PDFs written by hand (a few objects and an xref table), so each one holds
exactly the property it is made for, plus pypdf's encryption. Benchmarks must not import tests/, so the
builders both need live here."""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence

from pypdf import PdfReader, PdfWriter

PDF_HEADER = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"


def stream(data: bytes, *, compress: bool = True, entries: bytes = b"") -> bytes:
    """A stream object's body (dictionary and data), FlateDecode-compressed unless `compress` is False."""
    if compress:
        data = zlib.compress(data)
        entries += b" /Filter /FlateDecode"
    return b"<< /Length %d" % len(data) + entries + b" >>\nstream\n" + data + b"\nendstream"


def assemble(objects: Sequence[bytes], *, root: int = 1) -> bytes:
    """A PDF file from object bodies numbered 1..n, with a correct xref table."""
    out = io.BytesIO()
    out.write(PDF_HEADER)
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref))
    return out.getvalue()


def _escape(text: str) -> bytes:
    raw = text.encode("cp1252")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def text_operators(lines: Sequence[str]) -> bytes:
    """A content stream that shows each line with Helvetica, one under the other."""
    shown = b" T* ".join(b"(" + _escape(line) + b") Tj" for line in lines)
    return b"BT /F1 12 Tf 14 TL 72 720 Td " + shown + b" ET"


def pdf_from_contents(
    contents: Sequence[bytes | None],
    *,
    compress: bool = True,
    declared_count: int | None = None,
    raw_streams: bool = False,
    resources: bytes = b"<< /Font << /F1 3 0 R >> >>",
    extra_objects: Sequence[bytes] = (),
) -> bytes:
    """One page per content stream (None: a page without /Contents). Objects: 1 catalog, 2 pages, 3 font,
    then the extra objects, then page and content pairs. `raw_streams` means the contents are already
    complete FlateDecode stream bodies."""
    kids, objects = [], [b"", b"", FONT, *extra_objects]
    for content in contents:
        page_number = len(objects) + 1
        kids.append(b"%d 0 R" % page_number)
        if content is None:
            objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources " + resources + b" >>")
            objects.append(b"null")
        else:
            objects.append(
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources "
                + resources
                + b" /Contents %d 0 R >>" % (page_number + 1)
            )
            objects.append(content if raw_streams else stream(content, compress=compress))
    count = len(contents) if declared_count is None else declared_count
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = b"<< /Type /Pages /Kids [" + b" ".join(kids) + b"] /Count %d >>" % count
    return assemble(objects)


def text_pdf(pages: Sequence[Sequence[str]], *, compress: bool = True) -> bytes:
    """A real PDF with a text layer: one list of lines per page."""
    return pdf_from_contents([text_operators(lines) for lines in pages], compress=compress)


def encrypted_pdf(pages: Sequence[Sequence[str]], *, user_password: str = "secret") -> bytes:
    """A text PDF of `pages` encrypted by pypdf's writer; RC4 so no crypto library is needed. An empty user
    password makes a PDF that opens without a password but carries permission restrictions (still encrypted)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(text_pdf(pages))))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def image_only_pdf() -> bytes:
    """What a scanner without OCR produces: each page paints an image and shows no text."""
    image = stream(
        b"\x00\xff\xff\x00",
        entries=b" /Type /XObject /Subtype /Image /Width 2 /Height 2 /ColorSpace /DeviceGray /BitsPerComponent 8",
    )
    paint = b"q 468 0 0 648 72 72 cm /Im1 Do Q"
    return pdf_from_contents([paint, paint], resources=b"<< /XObject << /Im1 4 0 R >> >>", extra_objects=[image])
