"""Near-copies: MinHash signatures, their band keys (stored in the catalog, so fixed across versions), and
groups."""

from __future__ import annotations

from rag.ingest import dedup

STORY = ("Shares in the airline rose sharply on Tuesday after it reported record profits for the year, helped by "
         "strong demand on long-haul routes and lower fuel costs than analysts had expected at the start of it.")
WIRE_COPY = STORY.replace("on Tuesday", "on Tuesday morning")
OTHER_WRITE_UP = ("The carrier's stock climbed as annual earnings beat forecasts; executives credited busy "
                  "intercontinental flights and cheaper jet fuel for the best year in its history.")


def signed(text: str) -> bytes:
    return dedup.signature(text, [(0, len(text))])


def test_band_keys_are_the_same_in_every_version_because_indexes_store_them():
    text = "Shares in the airline rose after it reported record profits for the year."
    assert dedup.band_keys(signed(text))[:2] == [8800820484063172912, -8397167079615857020]
    assert len(dedup.band_keys(signed(text))) == dedup.BANDS and dedup.band_keys(b"") == []


def test_a_wire_copy_shares_a_band_key_and_is_similar_and_another_write_up_is_neither():
    story, copy, other = signed(STORY), signed(WIRE_COPY), signed(OTHER_WRITE_UP)
    assert set(dedup.band_keys(story)) & set(dedup.band_keys(copy)) and dedup.similar(story, copy)
    assert not set(dedup.band_keys(story)) & set(dedup.band_keys(other)) and not dedup.similar(story, other)


def test_a_group_is_named_by_its_smallest_key_and_singletons_by_their_own():
    groups = dedup.group({"b": signed(STORY), "a": signed(WIRE_COPY), "c": signed(OTHER_WRITE_UP)})
    assert groups == {"a": "a", "b": "a", "c": "c"}
