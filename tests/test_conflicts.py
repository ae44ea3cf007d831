import os
import subprocess
import sys
from pathlib import Path

from evidence_helpers import evidence_from

from rag.qa.conflicts import detect
from rag.qa.question import parse

ROOT = Path(__file__).resolve().parent.parent


def values(conflicts):
    return [[(v.value, v.evidence) for v in c.values] for c in conflicts]


def test_different_dates_from_different_articles_are_a_conflict():
    evidence = evidence_from(
        ("a.txt", "The call took place on November 21, officials said."),
        ("b.txt", "The November 16 call reportedly went badly."),
    )
    found = detect(parse("When did the call take place?"), evidence)
    assert values(found) == [[("November 21", (1,)), ("November 16", (2,))]]


def test_an_article_that_gives_both_dates_is_no_evidence_of_disagreement():
    evidence = evidence_from(
        ("a.txt", "The call on November 21 followed a first contact on November 16."),
        ("b.txt", "The call took place on November 21."),
    )
    assert detect(parse("When did the call take place?"), evidence) == []


def test_agreeing_articles_are_not_a_conflict():
    evidence = evidence_from(
        ("a.txt", "The storm closed the harbour for three days from March 1."),
        ("b.txt", "Since March 1 the harbour had been shut."),
    )
    assert detect(parse("When did the storm close the harbour?"), evidence) == []


def test_different_wording_of_a_quotation_is_a_conflict_and_a_long_quote_counts_as_its_short_form():
    evidence = evidence_from(
        ("a.txt", "He declared the airspace “closed in its entirety,” officials said."),
        ("b.txt", "He declared the airspace “completely closed.”"),
        ("b.txt", "“Please consider the airspace over the country completely closed,” he wrote."),
    )
    found = detect(parse("What exact words did he use to declare the airspace closed?"), evidence)
    assert values(found) == [[("closed in its entirety", (1,)), ("completely closed", (2, 3))]]


def test_different_labels_for_the_same_thing_are_a_conflict():
    evidence = evidence_from(
        ("a.txt", "Washington listed the cartel as a foreign terrorist organization last year."),
        ("b.txt", "The cartel was recently designated an international terrorist organization."),
    )
    found = detect(parse("How did Washington classify the cartel?"), evidence)
    assert sorted(v for group in values(found) for v, _ in group) == [
        "foreign terrorist organization", "international terrorist organization"]


def test_numbers_only_disagree_when_they_count_the_same_thing():
    evidence = evidence_from(
        ("a.txt", "The navy sent 12 warships to the region."),
        ("b.txt", "The navy sent 15 warships and 4000 troops."),
    )
    found = detect(parse("How many warships did the navy send?"), evidence)
    assert values(found) == [[("12 warships", (1,)), ("15 warships", (2,))]]


def test_a_copy_of_a_sentence_with_one_fact_changed_is_a_conflict_on_that_fact():
    evidence = evidence_from(
        ("copy1.txt", "The game was played on February 7 at the stadium in Tampa, Florida, the home of the team."),
        ("copy2.txt", "The game was played on February 7 at the stadium in Glendale, Arizona, the home of the team."),
    )
    found = detect(parse("Super Bowl 2021 location"), evidence)
    assert values(found) == [[("Tampa, Florida", (1,)), ("Glendale, Arizona", (2,))]]


def test_different_sentences_about_the_same_event_are_not_aligned_into_a_conflict():
    evidence = evidence_from(
        ("a.txt", "The storm closed the harbour for three days, the council said on Tuesday."),
        ("b.txt", "Fishermen returned to the docks at dawn after the harbour reopened."),
    )
    assert detect(parse("What happened to the harbour?"), evidence) == []


TWO_WINNERS = """
import sys
sys.path.insert(0, "tests")
from evidence_helpers import evidence_from
from rag.qa.conflicts import detect
from rag.qa.question import parse
evidence = evidence_from(
    ("a.txt", "Juliana Urtubey, a teacher from Las Vegas, was named teacher of the year on Tuesday."),
    ("b.txt", "Tabatha Rosproy, a teacher from Winfield, was named teacher of the year on Tuesday."),
)
print([(v.value, v.evidence) for c in detect(parse("Who was named teacher of the year?"), evidence) for v in c.values])
"""


def test_values_are_reported_in_the_same_order_in_every_process():
    # Several values first stated by the same sentence are ordered by value, not by a set's order, which changes
    # with each process's hash seed.
    outputs = {subprocess.run([sys.executable, "-c", TWO_WINNERS], cwd=ROOT, capture_output=True, text=True, check=True,
                              env=dict(os.environ, PYTHONHASHSEED=str(seed))).stdout for seed in range(6)}
    assert len(outputs) == 1, outputs
    reported = [value for value, _ in eval(outputs.pop())]  # noqa: S307 (our own subprocess's repr)
    # Both names are reported, each with its article, the first article's first.
    assert reported.index("Juliana Urtubey") < reported.index("Tabatha Rosproy")


def test_numbers_in_words_and_with_a_scale_are_values_too():
    evidence = evidence_from(
        ("a.txt", "Fans left the stadium with only three minutes left to play."),
        ("b.txt", "The stadium was evacuated with two minutes of normal time remaining."),
    )
    found = detect(parse("How much playing time was left when the stadium was evacuated?"), evidence)
    assert values(found) == [[("three minutes", (1,)), ("two minutes", (2,))]]
    evidence = evidence_from(
        ("a.txt", "Freddie Mac restated its earnings by $5bn after the investigation."),
        ("b.txt", "Freddie Mac restated its earnings by $4.4bn after the investigation."),
        ("c.txt", "Freddie Mac restated its earnings by 4.4 billion dollars after the investigation."),
    )
    found = detect(parse("By how much did Freddie Mac restate its earnings?"), evidence)
    assert values(found) == [[("$5bn", (1,)), ("$4.4bn", (2, 3))]]  # "4.4 billion dollars" is the same value


def test_each_article_gives_its_answer_even_in_a_sentence_that_repeats_little_of_the_question():
    """The values stand in sentences that share few words with the question; the most relevant sentence of
    each article that holds a number of the kind asked for is that article's answer."""
    evidence = evidence_from(
        ("a.txt", "Pete Doherty was granted bail on robbery and blackmail charges at the magistrates court."),
        ("a.txt", "He could not raise £150,000 bond money in time."),
        ("b.txt", "He is out on £50,000 bail."),
        score=0.6, coverage=0.1,
    )
    question = parse("How much was Pete Doherty's bail after his arrest on robbery and blackmail charges?")
    assert values(detect(question, evidence)) == [[("£150,000", (2,)), ("£50,000", (3,))]]


def test_a_yes_no_question_that_also_asks_how_much_compares_the_amounts():
    evidence = evidence_from(
        ("a.txt", "Japan's economy grew by just 0.1% in the three months to September."),
        ("b.txt", "The estimate of growth between July and September was downgraded to a 0.3% decline."),
    )
    question = parse("Did Japan's economy grow or shrink in the July-September quarter, and by how much?")
    assert question.kind == "yesno" and question.value_kind == "number"
    assert values(detect(question, evidence)) == [[("0.1%", (1,)), ("0.3%", (2,))]]


def test_a_year_is_not_a_count():
    evidence = evidence_from(
        ("a.txt", "Japan has 125,508 registered players, the report on its World Cup bid says."),
        ("b.txt", "Japan reached the 2003 World Cup with registered players from its league."),
    )
    assert detect(parse("How many registered players does Japan have?"), evidence) == []


def test_copies_that_differ_only_in_wording_do_not_disagree_about_an_amount():
    """Asked how much, two copies of one report disagree where their amounts differ, not where one says
    "General Motors of the US is to pay" and the other "GM had to pay"."""
    evidence = evidence_from(
        ("a.txt", "General Motors of the US is to pay Fiat 1.55bn euros to get out of a deal."),
        ("b.txt", "GM had to pay Fiat 1.55bn euros to get out of a deal."),
    )
    assert detect(parse("How much did General Motors pay Fiat?"), evidence) == []


def test_amounts_too_far_apart_to_be_two_reports_of_one_figure_are_different_quantities():
    # The tsunami case: people killed, and people thrown into poverty, share a unit but not a subject.
    evidence = evidence_from(
        ("a.txt", "The tsunami killed 140,000 people around the Indian Ocean, officials said."),
        ("b.txt", "The tsunami has thrown two million people into poverty, the UN said."),
    )
    assert detect(parse("How many people died in the Indian Ocean tsunami?"), evidence) == []


def test_a_figure_revised_between_two_reports_is_a_disagreement():
    evidence = evidence_from(
        ("monday.txt", "At least 40 people died in the floods, officials said on Monday."),
        ("thursday.txt", "Officials now say 62 people died in the floods."),
    )
    found = detect(parse("How many people died in the floods?"), evidence)
    assert values(found) == [[("40 people", (1,)), ("62 people", (2,))]]


def test_how_many_x_compares_amounts_of_x_even_where_another_amount_is_more_relevant():
    evidence = evidence_from(
        ("a.txt", "The share offer of 17.3 million shares, about 20% of the equity, sold out."),
        ("b.txt", "The offer was oversubscribed 16.2 times, bankers said."),
        ("b.txt", "It sold 17.2 million new shares in a bid to raise $443m."),
        score=0.6,
    )
    found = detect(parse("How many shares did the airline offer?"), evidence)
    assert values(found) == [[("17.3 million shares", (1,)), ("17.2 million new shares", (3,))]]


def test_asked_how_much_was_paid_only_sums_of_money_can_disagree():
    evidence = evidence_from(
        ("a.txt", "The site's traffic grew 40% after the deal was paid for."),
        ("b.txt", "Its traffic rose 84% in the year before it was bought."),
    )
    assert detect(parse("How much did the company pay to buy the site?"), evidence) == []


def test_the_ends_of_a_range_are_not_answers():
    evidence = evidence_from(
        ("a.txt", "Turnout among 18 to 24 year olds was low at the election."),
        ("b.txt", "Turnout among 21 year olds was low at the election."),
    )
    assert detect(parse("How old was the youngest voter?"), evidence) == []


def test_copies_that_differ_in_wording_or_a_title_are_not_two_facts():
    evidence = evidence_from(
        ("a.txt", "Mirza beat the eventual champion in the second round of the tournament in Melbourne."),
        ("b.txt", "Mirza beat the women's favourite in the second round of the tournament in Melbourne."),
    )
    assert detect(parse("Who did Mirza beat in the second round?"), evidence) == []


def test_amounts_from_an_article_about_another_subject_are_no_disagreement():
    # The second article counts jobs cut by a bank: nowhere does it name the company asked about.
    articles = {"a.txt": "Oracle has completed its takeover of Peoplesoft. Oracle is cutting about 5,000 jobs.",
                "b.txt": "Lloyds TSB is cutting jobs. The bank said 12,800 jobs would go over three years."}
    evidence = evidence_from(("a.txt", "Oracle is cutting about 5,000 jobs."),
                             ("b.txt", "The bank said 12,800 jobs would go over three years."))
    question = parse("How many jobs did Oracle cut after its takeover of Peoplesoft?")
    assert detect(question, evidence, articles.get) == []
    # An article that names the company in another sentence than the figure's is about it: a disagreement.
    articles["b.txt"] = "Oracle's takeover of Peoplesoft closed on Friday. The company said 6,000 jobs would go."
    evidence = evidence_from(("a.txt", "Oracle is cutting about 5,000 jobs."),
                             ("b.txt", "The company said 6,000 jobs would go."))
    assert values(detect(question, evidence, articles.get)) == [[("5,000 jobs", (1,)), ("6,000 jobs", (2,))]]


def test_a_proportion_asked_for_is_compared_in_percentages_only():
    evidence = evidence_from(
        ("a.txt", "Of the 15 million phones swapped each year, only 25% are returned for recycling."),
        ("b.txt", "Some 15 million handsets are replaced each year, and 12 million of them end in drawers."),
        ("b.txt", "Yet only 15% are actually recycled."),
    )
    found = detect(parse("Of the 15 million handsets replaced each year, what proportion are recycled?"), evidence)
    assert values(found) == [[("25%", (1,)), ("15%", (3,))]]


def test_two_names_written_after_the_thing_asked_about_are_a_disagreement():
    evidence = evidence_from(
        ("a.txt", "The composer was behind the West End musical Bollywood Dreams, staged in 2002."),
        ("b.txt", "The composer wrote the music of the popular West End musical, Bombay Dreams."),
    )
    found = detect(parse("What is the name of the West End musical that the composer was behind?"), evidence)
    assert values(found) == [[("Bollywood Dreams", (1,)), ("Bombay Dreams", (2,))]]
    # The same name in both is no disagreement.
    evidence = evidence_from(
        ("a.txt", "The composer was behind the West End musical Bombay Dreams, staged in 2002."),
        ("b.txt", "The composer wrote the music of the popular West End musical, Bombay Dreams."),
    )
    assert detect(parse("What is the name of the West End musical that the composer was behind?"), evidence) == []


def test_odds_are_one_value_and_two_prices_from_two_reports_disagree():
    evidence = evidence_from(
        ("a.txt", "Bookmaker William Hill has placed the novel as the 6/4 favourite to win the prize."),
        ("b.txt", "The novel is now the 5/4 favourite to win the prize, bookmakers say."),
    )
    found = detect(parse("What odds were bookmakers quoting on the novel winning the prize?"), evidence)
    assert values(found) == [[("6/4", (1,)), ("5/4", (2,))]]


def test_two_wordings_written_after_the_thing_asked_about_are_a_disagreement():
    evidence = evidence_from(
        ("a.txt", "Under what is to be the election slogan \"Britain is working\", the party pressed on."),
        ("b.txt", "The party unveiled its election slogan \"Britain forward not back\" on Friday."),
    )
    found = detect(parse("What slogan did the party say would be at the heart of its election campaign?"), evidence)
    assert values(found) == [[("Britain is working", (1,)), ("Britain forward not back", (2,))]]
    # A quotation that is not the thing asked about (what someone said of it) is no wording of it.
    evidence = evidence_from(
        ("a.txt", "Under what is to be the election slogan \"Britain is working\", the party pressed on."),
        ("b.txt", "A rival called the election slogan a \"tired idea\" on Friday."),
    )
    assert detect(parse("What slogan did the party say would be at the heart of its election campaign?"),
                  evidence) == []
