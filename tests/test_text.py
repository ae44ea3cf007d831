from rag.text import meaning_terms, name_runs, proper_names, quantities, quantities_stated, without_possessives


def test_quantities_apply_the_scale_however_it_is_written():
    assert [q.value for q in quantities("1.55bn euros ($2bn; £1.1 billion)")] == [1.55e9, 2e9, 1.1e9]
    assert [q.bare for q in quantities("1.55bn euros")] == [1.55]
    assert [q.value for q in quantities("twenty-five albums, two minutes, a dozen eggs, £50,000")] == \
        [25, 2, 12, 50000]


def test_quantities_stated_accepts_the_same_value_or_the_digits_without_their_scale():
    assert quantities_stated("$2 billion", "$2bn")
    assert quantities_stated("1.55", "1.55bn")
    assert not quantities_stated("1.55 million", "1.55bn")
    assert not quantities_stated("3 minutes", "two minutes")


def test_name_runs_group_adjacent_capitalized_words_and_skip_a_lone_sentence_opener():
    text = "Novels by Arthur Hailey sold well. Critics said so. Shares of Paion rose."
    assert name_runs(text) == [("arthur", "hailey"), ("paion",)]
    assert ("critics",) in name_runs(text, initial=True)


def test_without_possessives():
    assert without_possessives("Becker's record and Holmes’s run") == "Becker record and Holmes run"


def test_meaning_terms_write_each_number_as_its_value():
    """A claim saying "1.55 billion" adds no word its source ("1.55bn") lacks; another value is another word."""
    claim = meaning_terms("GM paid Fiat 1.55 billion euros, two years on")
    assert set(claim) <= set(meaning_terms("Fiat was paid 1.55bn euros by GM 2 years on"))
    assert not set(claim) <= set(meaning_terms("Fiat was paid 1.53bn euros by GM 2 years on"))


def test_a_name_ends_before_a_closing_single_quote():
    assert proper_names("He co-wrote 'Ring of Fire' with her.") == {"fire"}
    assert name_runs("The hit 'Ring of Fire' was his.") == [("fire",)]


# --- one normalisation for what sentences state (rag.text.values, normal_words, names) --------------------------
import pytest  # noqa: E402

from rag.text import british, name_words, normal_words, values, values_stated  # noqa: E402

SAME_VALUE = [
    ("$120 million", "$120m"), ("$120 million", "US$120m"), ("$120 million", "120 million dollars"),
    ("£3bn", "£3 billion"), ("two", "2"), ("5 per cent", "5%"), ("5 percent", "5%"),
    ("14:32.93", "14 minutes 32.93 seconds"), ("2:05:38", "2 hours 5 minutes 38 seconds"),
    ("100 metres", "100 meters"), ("100 metres", "the 100m"), ("60 km/h", "60 kilometres per hour"),
    ("30mph", "30 miles per hour"), ("1.55bn euros", "1.55 billion euros"),
]


@pytest.mark.parametrize("claim, source", SAME_VALUE)
def test_a_value_is_the_same_however_it_is_written(claim, source):
    assert values_stated(claim, source) and values_stated(source, claim)
    assert set(normal_words(claim)) & set(normal_words(source)) >= {w for w in normal_words(claim)
                                                                    if w.startswith("q")}


@pytest.mark.parametrize("claim, source", [
    ("$3bn", "£3bn"), ("£3bn", "£1.58bn"), ("5%", "5 metres"), ("14:32.93", "14:32.39"), ("$120m", "$12m"),
])
def test_another_value_or_another_currency_is_not_the_same(claim, source):
    assert not values_stated(claim, source)


def test_a_value_carries_its_unit_in_one_normal_name():
    assert [(v.value, v.unit) for v in values("US$120m and £3 billion, up 5 per cent")] == \
        [(120e6, "usd"), (3e9, "gbp"), (5, "percent")]
    assert [(v.value, v.unit) for v in values("He ran 14 minutes 32.93 seconds over 5,000 metres")] == \
        [(872.93, "second"), (5000, "metre")]


@pytest.mark.parametrize("american, british_form", [
    ("meters", "metres"), ("center", "centre"), ("organized", "organised"), ("organization", "organisation"),
    ("color", "colour"), ("honors", "honours"), ("neighborhood", "neighbourhood"), ("traveled", "travelled"),
    ("defense", "defence"), ("program", "programme"), ("analyze", "analyse"),
])
def test_american_spellings_read_as_british(american, british_form):
    assert british(american) == british(british_form) == british_form


def test_words_with_one_spelling_are_left_alone():
    assert [british(w) for w in ("size", "prize", "citizen", "meter" + "ed")] == ["size", "prize", "citizen",
                                                                                  "metered"]


def test_titles_and_possessives_are_not_part_of_a_name():
    assert name_words("Mr Demel's plan was backed by Dr Ruth Kelly.") == {"demel", "ruth", "kelly"}
    assert "mr" not in normal_words("Mr Demel said so")
