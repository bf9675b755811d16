"""The hostile-document corpus, generated in code: real files, crafted files, and their broken variants.

PDFs are written by hand (a few objects and an xref table; the common builders are local/document_corpus.py's,
shared with the bench) so each one holds exactly the property a test is about: text in a content stream, an
image and no text, a stream that inflates 256x, a page tree that lies about its size. pypdf's writer adds
the ones it can make itself (blank pages, encryption, a rewritten compressed copy).
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence

from pypdf import PdfReader, PdfWriter

from local import document_corpus
from local.document_corpus import FONT as _FONT
from local.document_corpus import PDF_HEADER, pdf_from_contents, text_operators, text_pdf
from local.document_corpus import assemble as assemble  # re-exported for the tests
from local.document_corpus import image_only_pdf as image_only_pdf  # re-exported for the tests
from local.document_corpus import stream as _stream

MIB = 1024 * 1024


def _flate_stream(compressed: bytes) -> bytes:
    return b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(compressed) + compressed + b"\nendstream"


SAMPLE_PAGES = (
    ("Bulwark resilience guide", "Retries stay within a budget of ten percent."),
    ("Disaster recovery", "The warm standby region answers within sixty seconds."),
    ("Appendix", "Circuit breakers open after five consecutive failures."),
)


def sample_pdf() -> bytes:
    return text_pdf(SAMPLE_PAGES)


def object_stream_pdf(pages: Sequence[Sequence[str]]) -> bytes:
    """The layout of most PDFs written since 2003 (PDF 1.5): catalog, page tree and font inside a compressed
    object stream, a cross-reference stream instead of an xref table."""
    count = len(pages)
    kids = b" ".join(b"%d 0 R" % (5 + 2 * n) for n in range(count))
    packed = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % count,
        _FONT,
    ]
    offsets, body = [], b""
    for item in packed:
        offsets.append(len(body))
        body += item + b"\n"
    header = b" ".join(b"%d %d" % (number, offset) for number, offset in enumerate(offsets, start=1)) + b"\n"
    object_stream = _stream(header + body, compress=True, entries=b" /Type /ObjStm /N 3 /First %d" % len(header))
    loose = [object_stream]
    for n, lines in enumerate(pages):
        loose.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            b"/Contents %d 0 R >>" % (6 + 2 * n)
        )
        loose.append(_stream(text_operators(lines), compress=True))
    out = io.BytesIO()
    out.write(PDF_HEADER.replace(b"1.7", b"1.5"))
    positions = {}
    for number, item in enumerate(loose, start=4):
        positions[number] = out.tell()
        out.write(b"%d 0 obj\n" % number + item + b"\nendobj\n")
    xref_number = 4 + len(loose)
    positions[xref_number] = out.tell()
    rows = [b"\x00" + (0).to_bytes(4, "big") + b"\xff\xff"]
    rows += [b"\x02" + (4).to_bytes(4, "big") + index.to_bytes(2, "big") for index in range(3)]
    rows += [b"\x01" + positions[number].to_bytes(4, "big") + b"\x00\x00" for number in range(4, xref_number + 1)]
    table = b"".join(rows)
    out.write(
        b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n"
        % (xref_number, xref_number + 1, len(table))
        + table
        + b"\nendstream\nendobj\n"
    )
    out.write(b"startxref\n%d\n%%%%EOF\n" % positions[xref_number])
    return out.getvalue()


def rewritten_by_pypdf(data: bytes) -> bytes:
    """The same document as pypdf's writer saves it (compressed streams, its own xref): a 'real world' file."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    for page in writer.pages:
        page.compress_content_streams()
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def encrypted_pdf(*, user_password: str = "secret") -> bytes:
    """The sample PDF encrypted by pypdf's writer (RC4); an empty user password opens without a password but
    keeps permission restrictions."""
    return document_corpus.encrypted_pdf(SAMPLE_PAGES, user_password=user_password)


def blank_pdf(pages: int = 2) -> bytes:
    """Pages with nothing on them, written by pypdf."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=612, height=792)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def many_pages_pdf(pages: int) -> bytes:
    return text_pdf([[f"Page {number} of {pages}"] for number in range(1, pages + 1)])


def lying_count_pdf(count: int = 1_000_000_000) -> bytes:
    """One real page in a tree that claims `count` pages: refused before anyone walks it."""
    return pdf_from_contents([text_operators(["one real page"])], declared_count=count)


def flate_bomb(inflated_size: int, *, fill: bytes = b" ") -> bytes:
    """A valid zlib stream of `fill` bytes that inflates to `inflated_size` (a multiple of 1 MiB, or rounded
    up to one). One MiB is deflated once, ended with a full flush (no back-references across it), and
    repeated: a 256 MiB bomb costs milliseconds to build, not a second of compressing."""
    block = (fill * (MIB // len(fill) + 1))[:MIB]
    repeats = max(1, -(-inflated_size // MIB))
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = raw.compress(block) + raw.flush(zlib.Z_FULL_FLUSH)
    checksum = 1
    for _ in range(repeats):
        checksum = zlib.adler32(block, checksum)
    return b"\x78\xda" + segment * repeats + raw.flush(zlib.Z_FINISH) + checksum.to_bytes(4, "big")


def bomb_pdf(inflated_size: int) -> bytes:
    """A page whose content stream is a few KB on disk and `inflated_size` bytes of whitespace when read."""
    return pdf_from_contents([_flate_stream(flate_bomb(inflated_size))], raw_streams=True)


def spread_bomb_pdf(pages: int, inflated_per_page: int) -> bytes:
    """Many pages, each under the per-stream bound, adding up past the document's bound."""
    body = text_operators(["x"]) + b"\n" + b" " * inflated_per_page
    return pdf_from_contents([_flate_stream(zlib.compress(body, 9)) for _ in range(pages)], raw_streams=True)


def text_bomb_pdf(characters: int) -> bytes:
    """A small file whose one page shows `characters` letters: more than paper holds."""
    shown = b"BT /F1 1 Tf 0 0 Td (" + b"A" * characters + b") Tj ET"
    return pdf_from_contents([_flate_stream(zlib.compress(shown, 9))], raw_streams=True)


def truncations(data: bytes) -> list[bytes]:
    """The same file cut at telling places: inside the header, the objects, the xref, the trailer."""
    cuts = {5, 8, 20, len(data) // 4, len(data) // 2, data.rfind(b"xref"), data.rfind(b"trailer"), len(data) - 8}
    return [data[:cut] for cut in sorted(cuts) if 0 < cut < len(data)]


# --- HTML, Markdown, text --------------------------------------------------------------------------------
HTML_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Bulwark &amp; friends</title>
  <style>body { color: red; } .secret::after { content: "STYLE-LEAK"; }</style>
  <script>var leak = "SCRIPT-LEAK"; document.write("<p>SCRIPT-LEAK</p>");</script>
</head>
<body>
  <nav><a href="/">Home</a></nav>
  <h1>Knowledge   base</h1>
  <p>First paragraph with <b>bold</b> and
     <i>italic</i> text.</p>
  <h2>Limits</h2>
  <ul><li>Pages: 500</li><li>Size: 20&nbsp;MiB</li></ul>
  <p>Line one<br>Line two</p>
  <pre>  indented
    code</pre>
  <table><tr><th>Key</th><th>Value</th></tr><tr><td>rto</td><td>60 s</td></tr></table>
  <noscript>NOSCRIPT-LEAK</noscript>
  <template><p>TEMPLATE-LEAK</p></template>
  <svg><text>SVG-LEAK</text></svg>
  <!-- COMMENT-LEAK -->
  <script type="module">
    if (a < b && c > d) { console.log("</p>SCRIPT-LEAK"); }
  </script>
</body>
</html>
"""

MARKDOWN = """# Runbook

## Failover

1. Check the health probe.
2. Move traffic to the standby region.

```bash
make drill
```

## Fail back

When the primary is healthy again, move traffic back.
"""

PLAIN_TEXT = "Grüße aus Köln — naïve café, 東京, emoji 🚀.\r\nSecond line.\r\n\r\n\r\n\r\nThird paragraph.\n"

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(20)

# Shapes that are quadratic (or worse) in at least one popular HTML parser, at a size where quadratic
# would mean minutes: a linear parser reads each in milliseconds.
HOSTILE_HTML = {
    "unterminated start tags": "<a " * 20_000,
    "unterminated quoted attribute": "<p>before</p><a x='" * 10_000,
    "unterminated comments": "<p>kept</p>" + "<!--" * 20_000,
    "tag soup without closing >": "x<a x" * 20_000,
    "deep nesting": "<div>" * 50_000 + "deep text" + "</div>" * 50_000,
    "many attributes": "<p " + " ".join(f"a{i}=1" for i in range(20_000)) + ">attributes text</p>",
    "unclosed script": "<p>visible</p><script>" + "x" * 100_000,
    "lone ampersands": "<p>Tom " + "&" * 50_000 + " Jerry</p>",
}
