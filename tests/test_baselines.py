"""The datatrove rule baselines."""

import pytest

from proxkit.baselines import rule_decision, rule_filters

ARTICLE = """The city council voted on Tuesday to build eleven kilometres of protected cycle lanes.
Supporters said the lanes would cut traffic and make short trips safer for children and older residents.
Shop owners on the high street asked for loading bays to be kept during the morning hours.
The council agreed to review deliveries after six months and to publish the numbers it collects.
Construction is planned to start in the summer and to finish before the end of next year.
A public meeting about the first section will be held in the library on the third of May.
Residents who cannot attend may send written comments to the transport office until the end of April.
The mayor thanked the volunteers who counted bicycles at twelve junctions over two busy weeks.
Critics argued that the money could have repaired the roads instead, and asked for an independent study.
The study, the council replied, would be commissioned in the autumn and shared with every household."""


def test_a_clean_article_passes_every_rule_set():
    assert rule_decision(ARTICLE, rule_filters()) == (True, None)


def test_a_menu_is_dropped_with_the_rule_that_dropped_it():
    keep, reason = rule_decision("Home | About | Contact\nLogin", rule_filters())
    assert not keep and reason.startswith("gopher:")
    keep, reason = rule_decision("Home | About | Contact\nLogin", rule_filters(["fineweb"]))
    assert not keep and reason.startswith("fineweb:")


def test_unknown_rule_sets_are_named():
    with pytest.raises(ValueError, match="dolma"):
        rule_filters(["gopher", "dolma"])
