import pytest

from app.replies import json_object, json_objects


@pytest.mark.parametrize(
    "reply, expected",
    [
        ('{"grade": "easy"}', {"grade": "easy"}),
        ('```json\n{"grade": "hard"}\n```', {"grade": "hard"}),
        ('Sure! Here it is: {"note": 1} and then {"grade": "medium"} done', {"grade": "medium"}),
        ("no json here", None),
        ("", None),
        (None, None),
        ('{"a": [1, 2', None),
    ],
)
def test_json_object_prefers_key(reply, expected):
    assert json_object(reply, prefer_key="grade") == expected


def test_first_object_without_preference_and_empty_objects_skipped():
    assert json_object('x {} y {"consistent": true} z {"b": 2}') == {"consistent": True}
    assert json_objects("[1, 2]") == []
