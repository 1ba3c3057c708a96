"""Refitting a tagger's doc probe: which documents it learns from, their weights, the validation report."""

from dataclasses import replace

import torch

from proxkit.train.doc_probe import collection_weights, probe_examples, validate
from proxkit.train.seed import Example
from proxkit.train.tagger import fit_doc_probe


def doc(source: str, collection: str, drop: bool, page_type: str | None = None, words: int = 5) -> Example:
    return Example(source, source.split("/")[1], "doc", ["word " * words], drop=drop, collection=collection,
                   page_type=page_type)  # fmt: skip


def test_page_types_label_the_pages_and_unlabelled_collections_stay_out():
    examples = [
        doc("dclm/1", "dclm", True),
        doc("wcxb-dev/a", "wcxb", False, "article"),
        doc("wcxb-dev/b", "wcxb", False, "listing"),
        doc("wcxb-dev/c", "wcxb", False, "service"),
        doc("cleaneval/d", "cleaneval", False),
        Example("wcxb-dev/e", "e", "chunk", ["x"], remove=[False], collection="wcxb", page_type="article"),
    ]
    chosen = probe_examples(examples)
    assert [(e.source, e.drop) for e in chosen] == [("dclm/1", True), ("wcxb-dev/a", False), ("wcxb-dev/b", True)]
    assert collection_weights(chosen).tolist() == [1.0, 0.5, 0.5]


def test_the_other_renderings_of_a_labelled_page_are_learnt_from_too():
    article = ["Menu", *["The council approved new cycle lanes on Tuesday morning."] * 12]  # 108 content words
    noise = [True] + [False] * 12

    def page(rendering: str, source: str = "wcxb-dev/a", page_type: str | None = "listing") -> Example:
        return Example(source, "a", "chunk", article, noise, collection="wcxb", page_type=page_type,
                       rendering=rendering)  # fmt: skip

    first = replace(page("resiliparse"), stage="doc", remove=None, drop=False)
    examples = [first, page("resiliparse"), page("inscriptis"), page("html-text"), page("inscriptis", "l3s/b", None)]
    chosen = probe_examples(examples)
    assert [(e.rendering, e.stage, e.drop) for e in chosen] == [
        ("resiliparse", "doc", True),
        ("inscriptis", "doc", True),
        ("html-text", "doc", True),
    ]  # a listing drops in every rendering; a page of a collection without page types stays out
    assert probe_examples(examples, renderings=False) == chosen[:1]


def test_weights_decide_which_documents_the_probe_follows():
    pooled = torch.tensor([[1.0], [1.0], [-1.0], [-1.0]])
    against = [True, False, False, True]  # the two halves of each cluster disagree: the weights decide
    heavy_first = fit_doc_probe(DocProbeFor(1), pooled, against, 0.1, torch.tensor([10.0, 1.0, 10.0, 1.0]))
    heavy_last = fit_doc_probe(DocProbeFor(1), pooled, against, 0.1, torch.tensor([1.0, 10.0, 1.0, 10.0]))
    with torch.no_grad():
        assert heavy_first(pooled[:1]).item() > 0 > heavy_last(pooled[:1]).item()


def DocProbeFor(features: int):
    from proxkit.models.tagger import DocProbe

    return DocProbe(features)


def test_validation_reports_dclm_and_the_reader_pages_kept():
    generator = torch.Generator().manual_seed(0)
    examples, rows = [], []
    for index in range(40):  # DCLM: the first feature tells drop from keep
        drop = index % 2 == 0
        examples.append(doc(f"dclm/{index}", "dclm", drop))
        rows.append([1.0 if drop else -1.0, 0.0])
    for index in range(30):  # page-typed sites: articles (full page and gold) keep, listings drop
        site, keep = f"site{index % 10}.example", index % 3 != 0
        page_type = "article" if keep else "listing"
        examples.append(doc(f"wcxb-dev/{site}-{index}", "wcxb", not keep, page_type, words=400))
        examples[-1].rendering = ("resiliparse", "inscriptis")[index % 2]
        examples.append(doc(f"wcxb-dev/{site}-{index}/gold", "wcxb", not keep, page_type, words=400))
        rows += [[0.0, -1.0 if keep else 1.0]] * 2
    pooled = torch.tensor(rows) + 0.1 * torch.randn(len(rows), 2, generator=generator)
    for example in examples:  # the sites as site_folds reads them
        example.site = example.source.split("/")[1].split("-")[0]
    report = validate(pooled, examples, threshold=0.5)
    assert report["dclm"]["accuracy"] > 0.8  # chance: 0.5
    assert report["reader_pages_kept_page"]["pages"] == report["reader_pages_kept_gold"]["pages"] == 20
    assert report["reader_pages_kept_page"]["share"] > 0.8 and report["reader_pages_kept_gold"]["share"] > 0.8
    assert report["reader_pages_kept_page@resiliparse"]["pages"] == report["reader_pages_kept_page@inscriptis"]["pages"]
    assert "reader_pages_kept_gold@None" not in report and "reader_pages_kept_page@None" not in report
