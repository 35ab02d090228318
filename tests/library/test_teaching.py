"""Teaching data: comments and bookmarks, tags, metadata, collections, and search/filter."""
from __future__ import annotations

from datetime import date

import pytest

from library import CaseFilter, LibraryError, NotFoundError
from library.worker import Worker
from tests.library.conftest import write_fake_results


def test_comments_sorted_by_time_with_kinds(lib, make_case):
    case_id = make_case()
    late = lib.add_comment(case_id, 20.5, "  clipping starts  ", author="T01")
    early = lib.add_comment(case_id, 3, "grasper enters", kind="bookmark")
    assert late.text == "clipping starts" and late.author == "T01"
    assert [c.id for c in lib.list_comments(case_id)] == [early.id, late.id]
    assert [c.id for c in lib.list_comments(case_id, kind="bookmark")] == [early.id]
    edited = lib.update_comment(late.id, text="clipping", timestamp_s=1.0)
    assert (edited.text, edited.timestamp_s) == ("clipping", 1.0)
    assert [c.id for c in lib.list_comments(case_id)] == [late.id, early.id]
    lib.delete_comment(early.id)
    assert [c.id for c in lib.list_comments(case_id)] == [late.id]
    with pytest.raises(NotFoundError, match=f"no comment with id {early.id}"):
        lib.delete_comment(early.id)


def test_answers_follow_their_comment(lib, make_case):
    case_id, other = make_case(), make_case()
    question = lib.add_comment(case_id, 12.0, "Is this the cystic duct?", kind="bookmark", author="T01")
    answer = lib.add_comment(case_id, 0.0, "Yes: follow it to the gallbladder.", parent_id=question.id, author="E02")
    again = lib.add_comment(case_id, 0.0, "Thanks", parent_id=answer.id)  # a reply to a reply joins the thread
    assert (answer.parent_id, answer.timestamp_s, answer.kind) == (question.id, 12.0, "comment")
    assert again.parent_id == question.id
    lib.update_comment(question.id, timestamp_s=14.0)
    assert {c.timestamp_s for c in lib.list_comments(case_id)} == {14.0}
    assert lib.list_comments(case_id)[1].to_dict()["parent_id"] == question.id
    with pytest.raises(NotFoundError, match=f"no comment with id {question.id} in case {other}"):
        lib.add_comment(other, 1.0, "wrong case", parent_id=question.id)
    lib.delete_comment(question.id)
    assert lib.list_comments(case_id) == []


def test_a_title_given_at_upload(lib, tmp_path):
    from tests.library.conftest import fake_video

    case, _ = lib.ingest(fake_video(tmp_path, "a.mp4", b"one"), title="  Difficult Calot triangle ")
    assert case.title == "Difficult Calot triangle"
    same, created = lib.ingest(fake_video(tmp_path, "b.mp4", b"one"), title="Another name")
    assert not created and same.title == "Difficult Calot triangle"
    blank, _ = lib.ingest(fake_video(tmp_path, "c.mp4", b"two"), title="   ")
    assert blank.title == f"Case {blank.id}"
    with pytest.raises(LibraryError, match="title must be 1-200 characters"):
        lib.ingest(fake_video(tmp_path, "d.mp4", b"three"), title="x" * 201)
    assert len(lib.list_cases()) == 2


@pytest.mark.parametrize(
    ("t", "text", "kind", "match"),
    [
        (-1, "x", "comment", "timestamp must be >= 0"),
        (float("nan"), "x", "comment", "timestamp must be >= 0"),
        ("soon", "x", "comment", "timestamp must be a number"),
        (40, "x", "comment", r"after the end of the video \(32 s\)"),
        (1, "   ", "comment", "comment text is empty"),
        (1, "x" * 5001, "comment", "over the limit of 5000"),
        (1, "x", "note", "comment kind must be one of"),
    ],
)
def test_bad_comments(lib, make_case, t, text, kind, match):
    case_id = make_case()
    with pytest.raises(LibraryError, match=match):
        lib.add_comment(case_id, t, text, kind=kind)
    assert lib.list_comments(case_id) == []


def test_comment_on_missing_case(lib):
    with pytest.raises(NotFoundError, match="no case with id 99"):
        lib.add_comment(99, 1.0, "x")


def test_tags_are_normalised_and_unique(lib, make_case):
    a, b = make_case(), make_case()
    lib.add_tag(a, "  Teaching   Set ")
    lib.add_tag(a, "teaching set")
    lib.add_tag(a, "bleeding")
    lib.add_tag(b, "bleeding")
    assert lib.get_case(a).tags == ("bleeding", "teaching set")
    assert lib.filter_options().tags == ("bleeding", "teaching set")
    lib.remove_tag(a, "Teaching Set")
    lib.remove_tag(a, "not there")
    assert lib.get_case(a).tags == ("bleeding",)
    assert lib.filter_options().tags == ("bleeding",)
    with pytest.raises(LibraryError, match="tag must be 1-64 characters"):
        lib.add_tag(a, " ")


def test_metadata_update_and_validation(lib, make_case):
    case_id = make_case()
    case = lib.update_metadata(case_id, procedure="Laparoscopic cholecystectomy", operation_date="2024-05-02",
                               surgeon_id="S03", difficulty=4, notes="adhesions")
    assert (case.procedure, case.operation_date, case.surgeon_id, case.difficulty, case.notes) == (
        "Laparoscopic cholecystectomy", date(2024, 5, 2), "S03", 4, "adhesions")
    case = lib.update_metadata(case_id, notes=None, title="Difficult Calot")
    assert case.notes is None and case.title == "Difficult Calot" and case.difficulty == 4
    for kwargs, match in [
        ({"difficulty": 6}, "difficulty must be 1-5"),
        ({"difficulty": True}, "difficulty must be 1-5"),
        ({"surgeon_id": "Dr John Smith"}, "surgeon_id must be a pseudonym"),
        ({"operation_date": "02/05/2024"}, "date must be YYYY-MM-DD"),
        ({"title": " "}, "title must be 1-200 characters"),
    ]:
        with pytest.raises(LibraryError, match=match):
            lib.update_metadata(case_id, **kwargs)
    assert lib.get_case(case_id).difficulty == 4


def test_collections_keep_order(lib, make_case):
    a, b, c, d = (make_case() for _ in range(4))
    coll = lib.create_collection("Calot basics", "first steps")
    for case_id in (a, b, c):
        coll = lib.add_to_collection(coll.id, case_id)
    assert coll.case_ids == (a, b, c)
    assert lib.move_item(coll.id, c, 0).case_ids == (c, a, b)
    assert lib.move_item(coll.id, c, 99).case_ids == (a, b, c)
    assert lib.add_to_collection(coll.id, d, position=1).case_ids == (a, d, b, c)
    assert lib.add_to_collection(coll.id, a).case_ids == (d, b, c, a)  # re-adding moves it
    assert lib.remove_from_collection(coll.id, b).case_ids == (d, c, a)
    assert [case.id for case in lib.collection_cases(coll.id)] == [d, c, a]
    assert [x.name for x in lib.collections_of_case(a)] == ["Calot basics"]
    with pytest.raises(NotFoundError, match=f"case {b} is not in collection"):
        lib.move_item(coll.id, b, 0)


def test_collection_crud(lib, make_case):
    first = lib.create_collection("B set")
    lib.create_collection("A set")
    assert [c.name for c in lib.list_collections()] == ["A set", "B set"]
    with pytest.raises(LibraryError, match="a collection named 'A set' already exists"):
        lib.create_collection(" A set ")
    with pytest.raises(LibraryError, match="already exists"):
        lib.update_collection(first.id, name="A set")
    renamed = lib.update_collection(first.id, name="C set", description="new")
    assert (renamed.name, renamed.description) == ("C set", "new")
    case_id = make_case()
    lib.add_to_collection(first.id, case_id)
    lib.delete_collection(first.id)
    assert [c.name for c in lib.list_collections()] == ["A set"]
    assert lib.get_case(case_id).id == case_id  # the case stays
    with pytest.raises(NotFoundError):
        lib.get_collection(first.id)


def _analysed(lib, make_case, phases, tools, duration_s):
    case_id = make_case()

    def analyze(video_path, out_dir, config, progress):
        return write_fake_results(out_dir, phases=phases, tools=tools, duration_s=duration_s)

    Worker(lib, analyze).run_once()
    return case_id


@pytest.fixture
def library_of_three(lib, make_case):
    short = _analysed(lib, make_case, [(0, 10, "Preparation")], {"Grasper": [1]}, 10.0)
    mid = _analysed(lib, make_case, [(0, 5, "Preparation"), (5, 40, "ClippingCutting")],
                    {"Clipper": [6, 7], "Scissors": [8]}, 40.0)
    long = _analysed(lib, make_case, [(0, 90, "GallbladderDissection")], {"Hook": [1, 2], "Grasper": [3]}, 90.0)
    lib.add_tag(short, "teaching")
    lib.add_tag(mid, "teaching")
    lib.add_tag(mid, "clips 100%")
    lib.update_metadata(short, operation_date=date(2024, 1, 10), surgeon_id="S01", procedure="LC")
    lib.update_metadata(mid, operation_date=date(2024, 3, 5), surgeon_id="S02", difficulty=5)
    lib.add_comment(long, 12.0, "Critical view of safety reached")
    return short, mid, long


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({}, "long mid short"),
        ({"tags": ["teaching"]}, "mid short"),
        ({"tags": ["teaching", "clips 100%"]}, "mid"),
        ({"tags": "teaching"}, "mid short"),
        ({"phases": ["Preparation"]}, "mid short"),
        ({"phases": ["clipping-and-cutting"]}, "mid"),  # aliases work
        ({"tools": ["Clipper", "Scissors"]}, "mid"),
        ({"tools": ["Grasper"]}, "long short"),
        ({"min_duration_s": 30}, "long mid"),
        ({"min_duration_s": 30, "max_duration_s": 60}, "mid"),
        ({"date_from": date(2024, 2, 1)}, "mid"),
        ({"date_from": "2024-01-01", "date_to": "2024-01-31"}, "short"),
        ({"text": "critical VIEW"}, "long"),  # comment text
        ({"text": "s02"}, "mid"),  # surgeon id
        ({"text": "100%"}, "mid"),  # tag; % is literal
        ({"text": "%"}, "mid"),
        ({"text": "hook"}, "long"),  # an instrument found
        ({"text": "grasp"}, "long short"),
        ({"text": "Gallbladder dissection"}, "long"),  # a phase by its display name
        ({"text": "clipping"}, "mid"),
        ({"statuses": ["done"]}, "long mid short"),
        ({"statuses": ["failed"]}, ""),
        ({"surgeon_id": "S01"}, "short"),
        ({"procedure": "LC"}, "short"),
        ({"min_difficulty": 5}, "mid"),
        ({"order": "duration"}, "long mid short"),
        ({"order": "oldest"}, "short mid long"),
        ({"order": "operation_date"}, "mid short long"),
        ({"order": "oldest", "limit": 1, "offset": 1}, "mid"),
    ],
)
def test_filters(lib, library_of_three, criteria, expected):
    names = dict(zip(library_of_three, ("short", "mid", "long"), strict=True))
    assert " ".join(names[c.id] for c in lib.list_cases(**criteria)) == expected
    assert [c.id for c in lib.list_cases(CaseFilter(**criteria))] == [c.id for c in lib.list_cases(**criteria)]


@pytest.mark.parametrize(("criteria", "match"), [({"order": "size"}, "unknown order 'size'"),
                                                 ({"statuses": ["lost"]}, r"unknown status\(es\) \['lost'\]")])
def test_bad_filters(lib, criteria, match):
    with pytest.raises(LibraryError, match=match):
        lib.list_cases(**criteria)


def test_filter_options(lib, library_of_three):
    options = lib.filter_options()
    assert options.phases == ("Preparation", "ClippingCutting", "GallbladderDissection")  # taxonomy order
    assert options.tools == ("Grasper", "Hook", "Scissors", "Clipper")
    assert options.procedures == ("LC",) and options.surgeon_ids == ("S01", "S02")
    assert options.max_duration_s == 90.0 and options.status_counts == {"done": 3}
