"""Read article files into Documents: their text, title, date, hash and the prose regions to index."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.errors import BadInput, FileProblem
from rag.ingest import cleaning

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
JSON_SUFFIXES = {".json", ".jsonl"}
# Every suffix `rag index` and the UI's upload accept (the UI lists them in this order).
SUPPORTED_SUFFIXES = tuple(sorted(TEXT_SUFFIXES | HTML_SUFFIXES | JSON_SUFFIXES))
DEFAULT_MAX_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Document:
    """One article. ``text`` is what every offset points into: the decoded file for plain text and
    Markdown, the extracted main text for HTML, the record's ``text`` field for JSON."""

    id: str
    path: str
    title: str
    date: str | None
    text: str
    content_hash: str
    blocks: tuple[tuple[int, int], ...]
    url: str | None = None
    source: str | None = None


def decode(data: bytes) -> str:
    """Bytes to text: UTF-8 (BOM dropped), else Windows-1252, else Latin-1. Rejects binary data."""
    if b"\x00" in data[:8192]:
        raise BadInput("binary file (contains NUL bytes), not text")
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise BadInput("cannot decode text")  # unreachable: latin-1 decodes anything


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def discover(
    paths: Sequence[str | Path], id_base: Path | None = None
) -> tuple[list[tuple[Path, str]], list[FileProblem]]:
    """Files to index with their document ids: the path relative to ``id_base`` when given, else relative to
    the folder given, or the file name for a file given by name.

    Folders are walked without following symlinked folders (no loops); files of other types inside a
    folder are skipped, but a file named explicitly must be of a supported type.
    """
    found: list[tuple[Path, str]] = []
    errors: list[FileProblem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for folder, dirnames, filenames in os.walk(path, followlinks=False):
                dirnames.sort()
                for name in sorted(filenames):
                    file = Path(folder) / name
                    if file.suffix.lower() in SUPPORTED_SUFFIXES and not name.startswith("."):
                        doc_id = _doc_id(file, id_base) if id_base else file.relative_to(path).as_posix()
                        found.append((file, doc_id))
        elif path.exists():
            if path.suffix.lower() in SUPPORTED_SUFFIXES:
                found.append((path, _doc_id(path, id_base) if id_base else path.name))
            else:
                supported = " ".join(SUPPORTED_SUFFIXES)
                errors.append(FileProblem(str(path), f"unsupported file type (supported: {supported})"))
        else:
            errors.append(FileProblem(str(path), "no such file or folder"))
    return found, errors


def _doc_id(file: Path, base: Path) -> str:
    try:
        return file.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return file.name


def load_file(path: Path, doc_id: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[Document]:
    """Documents of one file (a JSON Lines file holds several). Raises BadInput for a bad file."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise BadInput(f"file is {size / 2**20:.1f} MB, over the {max_bytes / 2**20:.0f} MB limit")
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read file ({exc.strerror or exc})") from exc
    if not data.strip():
        raise BadInput("empty file")
    text = decode(data)
    suffix = path.suffix.lower()
    if suffix in HTML_SUFFIXES:
        yield _from_html(text, path, doc_id)
    elif suffix in JSON_SUFFIXES:
        yield from _from_json(text, path, doc_id)
    else:
        yield make_document(doc_id, str(path), text)


def make_document(
    doc_id: str,
    path: str,
    text: str,
    title: str | None = None,
    date: str | None = None,
    url: str | None = None,
    source: str | None = None,
) -> Document:
    blocks = tuple(cleaning.prose_blocks(text))
    if not blocks:
        raise BadInput("no article text found")
    title = title or cleaning.find_title(text) or _first_words(text, blocks[0])
    return Document(
        id=doc_id,
        path=path,
        title=title,
        date=date or cleaning.find_date(text),
        text=text,
        content_hash=content_hash(text),
        blocks=blocks,
        url=url,
        source=source,
    )


def _first_words(text: str, block: tuple[int, int], limit: int = 80) -> str:
    first = " ".join(text[block[0] : block[1]].split())
    return first if len(first) <= limit else first[: first.rfind(" ", 0, limit)] + " …"


def _from_html(html: str, path: Path, doc_id: str) -> Document:
    import trafilatura

    extracted = trafilatura.extract(html, output_format="json", with_metadata=True, include_comments=False)
    if not extracted:
        raise BadInput("no article text found in HTML")
    meta = json.loads(extracted)
    if not (meta.get("text") or "").strip():
        raise BadInput("no article text found in HTML")
    return make_document(
        doc_id, str(path), meta["text"], title=meta.get("title"), date=meta.get("date"),
        url=meta.get("url") or meta.get("source"), source=meta.get("sitename") or meta.get("hostname"),
    )


_RECORD_FIELDS = ("title", "date", "url", "source")


def _from_json(text: str, path: Path, doc_id: str) -> Iterator[Document]:
    if path.suffix.lower() == ".jsonl":
        records = []
        for line_no, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append((f"{doc_id}#{line_no}", json.loads(line), f"line {line_no}"))
                except json.JSONDecodeError as exc:
                    raise BadInput(f"line {line_no}: invalid JSON ({exc.msg})") from exc
                except RecursionError as exc:
                    raise BadInput(f"line {line_no}: JSON nested too deeply") from exc
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"invalid JSON ({exc.msg} at line {exc.lineno})") from exc
        except RecursionError as exc:  # json.loads recurses once per nesting level
            raise BadInput("JSON nested too deeply") from exc
        items = data if isinstance(data, list) else [data]
        single = not isinstance(data, list)
        records = [
            (doc_id if single else f"{doc_id}#{i}", item, "record" if single else f"record {i}")
            for i, item in enumerate(items, start=1)
        ]
    if not records:
        raise BadInput("no records")
    for record_id, record, where in records:
        if not isinstance(record, dict):
            raise BadInput(f"{where}: expected an object with a 'text' field")
        body = record.get("text")
        if not isinstance(body, str) or not body.strip():
            raise BadInput(f"{where}: missing or non-string 'text' field")
        extras = {}
        for name in _RECORD_FIELDS:
            value = record.get(name)
            if value is not None and not isinstance(value, str):
                raise BadInput(f"{where}: field '{name}' must be a string")
            extras[name] = value
        try:
            yield make_document(record_id, str(path), body, **extras)
        except BadInput as exc:
            raise BadInput(f"{where}: {exc}") from exc
