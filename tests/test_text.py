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
