"""Browsing a section: pages by headline or newest date first, read through the catalog's indexes from where the
last page ended (keyset paging), the same on an index written before sections were stored, and stable while
articles are added."""

from __future__ import annotations

import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import write_files

from rag.config import Config
from rag.index import generations
from rag.index.build import build_index
from rag.index.catalog import SQLITE, IndexReader, date_key

ROOT = Path(__file__).resolve().parent.parent


def article(headline: str, date: str | None, body: str) -> str:
    dated = f"Published: {date}\n\n" if date else "\n"
    return f"{headline}\n{dated}{body} The council said more would follow.\n"


# Eight sport articles (six dated, two not; one headline with an apostrophe), two on the economy.
FILES = {
    "sport/a.txt": article("Zebra crossing closed for the derby", "March 4, 2025", "Crowds gathered early."),
    "sport/b.txt": article("anchor leg decides the relay", "January 12, 2025", "The relay ended in a photo."),
    "sport/c.txt": article("Marathon route changes again", None, "Runners will pass the harbour."),
    "sport/d.txt": article("Keeper signs a new contract", "March 4, 2025", "The club confirmed the deal."),
    "sport/e.txt": article("Boxing returns to the old hall", "December 30, 2024", "Tickets sold out in an hour."),
    "sport/f.txt": article("Cycling tour adds a mountain stage", None, "The climb is the steepest yet."),
    "sport/g.txt": article("Tennis final moved indoors", "February 2, 2025", "Rain is forecast all week."),
    "sport/k.txt": article("Keeper's injury rules him out", "March 4, 2025", "Scans showed a tear."),
    "economy/h.txt": article("Budget surplus surprises analysts", "March 1, 2025", "Tax receipts rose."),
    "economy/i.txt": article("Harbour fees to rise", None, "Shipping firms objected."),
}


def walk(reader: IndexReader, section: str | None, order: str, size: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        records, cursor = reader.page(section, order, cursor, size)  # type: ignore[arg-type]
        pages.append([r.id for r in records])
        if cursor is None:
            return pages


def by_headline(names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: (FILES[n].split("\n")[0].casefold(), n))


def by_date(names: list[str]) -> list[str]:
    """Newest first, ties by name; articles without a readable date after every dated one."""
    def key(name: str) -> tuple:
        day = date_key(FILES[name].split("\n")[1])
        return (day is None, -int(day.replace("-", "")) if day else 0, name)

    return sorted(names, key=key)


def test_a_section_is_paged_by_headline_and_by_newest_date_in_full_and_without_repeats(tmp_path):
    config = Config(index_dir=tmp_path / "index")
    build_index([write_files(tmp_path / "corpus", FILES)], config)
    reader = IndexReader(config.index_dir)
    sport = [n for n in FILES if n.startswith("sport/")]
    pages = walk(reader, "sport", "headline", 3)
    assert [len(p) for p in pages] == [3, 3, 2]
    assert sum(pages, []) == by_headline(sport)  # "anchor leg" first: headlines are ordered ignoring case
    assert sum(walk(reader, "sport", "date", 2), []) == by_date(sport)
    assert sum(walk(reader, None, "headline", 4), []) == by_headline(list(FILES))
    assert reader.sections() == {"economy": 2, "sport": 8}


def test_pages_carry_on_where_they_ended_while_articles_are_added(tmp_path):
    config = Config(index_dir=tmp_path / "index")
    corpus = write_files(tmp_path / "corpus", FILES)
    build_index([corpus], config)
    first, cursor = IndexReader(config.index_dir).page("sport", "headline", None, 3)
    # One article that sorts before the end of the first page, one after it.
    write_files(corpus, {"sport/x.txt": article("Archery club opens", None, "Targets were set up."),
                         "sport/y.txt": article("Yachting regatta postponed", None, "The wind dropped.")})
    build_index([corpus], config)
    reader = IndexReader(config.index_dir)
    rest = sum(walk_from(reader, cursor), [])
    seen = [r.id for r in first] + rest
    assert len(seen) == len(set(seen)), "no article is shown twice"
    assert "sport/y.txt" in rest and "sport/x.txt" not in rest  # x sorts into a page already read
    assert set(seen) | {"sport/x.txt"} == {n for n in FILES if n.startswith("sport/")} | {"sport/x.txt",
                                                                                         "sport/y.txt"}


def walk_from(reader: IndexReader, cursor: str | None) -> list[list[str]]:
    pages = []
    while cursor is not None:
        records, cursor = reader.page("sport", "headline", cursor, 3)
        pages.append([r.id for r in records])
    return pages


def test_an_index_from_before_sections_were_stored_pages_and_filters_alike_and_gets_them_when_next_indexed(
        tmp_path):
    config = Config(index_dir=tmp_path / "index")
    corpus = write_files(tmp_path / "corpus", FILES)
    build_index([corpus], config)
    fresh = IndexReader(config.index_dir)
    expected = (walk(fresh, "sport", "headline", 3), walk(fresh, "sport", "date", 3), fresh.sections(),
                fresh.chunk_ids_in("sport"))
    fresh.close()
    db = sqlite3.connect(generations.current_generation(config.index_dir) / SQLITE)
    for index in ("documents_by_section_title", "documents_by_section_date", "documents_by_date"):
        db.execute(f"DROP INDEX {index}")
    db.execute("ALTER TABLE documents DROP COLUMN section")
    db.execute("ALTER TABLE documents DROP COLUMN date_key")
    db.commit()
    db.close()
    old = IndexReader(config.index_dir)
    assert (walk(old, "sport", "headline", 3), walk(old, "sport", "date", 3), old.sections(),
            old.chunk_ids_in("sport")) == expected
    old.close()
    write_files(corpus, {"economy/j.txt": article("Exports climb", "April 1, 2025", "Ports were busy.")})
    build_index([corpus], config)
    db = sqlite3.connect(generations.current_generation(config.index_dir) / SQLITE)
    assert db.execute("SELECT section, date_key FROM documents WHERE id = 'sport/a.txt'").fetchone() == (
        "sport", "2025-03-04")
    db.close()
    assert IndexReader(config.index_dir).sections() == {"economy": 3, "sport": 8}


def rag(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag.app.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_rag_sections_pages_through_a_section_and_prints_the_command_for_the_next_page(tmp_path):
    index_dir = tmp_path / "index"
    build_index([write_files(tmp_path / "corpus", FILES)], Config(index_dir=index_dir))
    shown: list[str] = []
    args = ["sections", "sport", "--index-dir", str(index_dir), "--page-size", "5"]
    while True:
        result = rag(*args)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        shown += [line.rsplit("(", 1)[1].rstrip(")") for line in lines if not line.startswith("next page:")]
        if not lines[-1].startswith("next page: "):
            break
        cursor = shlex.split(lines[-1].split("--after ", 1)[1])[0]  # as a shell reads the printed command
        args = ["sections", "sport", "--index-dir", str(index_dir), "--page-size", "5", "--after", cursor]
    assert shown == by_headline([n for n in FILES if n.startswith("sport/")])
    bad = rag("sections", "sport", "--index-dir", str(index_dir), "--after", "page two")
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and "not a cursor" in bad.stderr
    missing = rag("sections", "weather", "--index-dir", str(index_dir))
    assert missing.returncode != 0 and "no section 'weather'" in missing.stderr and "economy, sport" in missing.stderr
