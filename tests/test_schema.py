import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.schema import COLUMNS, LABELS, conform, empty_log, sort_log, validate


def test_every_column_and_vocabulary_value_has_both_labels():
    from analysis.schema import CATEGORIES, FAILURE_REASONS, STATUSES

    for key in [*COLUMNS, *STATUSES, *FAILURE_REASONS, *CATEGORIES]:
        assert key in LABELS["zh"] and key in LABELS["en"], key
        assert LABELS["zh"][key] != LABELS["en"][key]


def test_empty_log_is_valid_and_tz_aware():
    log = empty_log()
    validate(log)
    assert str(log["submit_time"].dt.tz) == "Asia/Shanghai"
    assert list(log["status"].cat.categories) == ["delivered", "failed", "expired", "rejected", "unknown", "pending"]


def test_validate_rejects_wrong_dtype_columns_and_order():
    """pandera checks the frame's form lazily: every problem is named in one error."""
    log = empty_log()
    log["segments"] = log["segments"].astype("float64")
    log["submit_time"] = log["submit_time"].dt.tz_localize(None)
    with pytest.raises(ValueError) as err:
        validate(log.drop(columns="fee").assign(extra=1))
    message = str(err.value)
    for problem in ("column 'segments' has dtype float64, expected 'Int16'", "column 'fee' is missing",
                    "column 'extra' is not a canonical column", "column 'submit_time': not a tz-aware timestamp"):
        assert problem in message, problem
    with pytest.raises(ValueError, match="out of the canonical order"):
        validate(empty_log()[list(COLUMNS)[::-1]])


def test_validate_lists_every_problem_of_the_values():
    """Each value rule is checked on its own rows, and one error names them all."""
    frame = pd.DataFrame({"vendor": ["a", None, "a", "a"], "phone": ["+8613800138000"] * 4,
                          "submit_time": pd.to_datetime(["2025-05-06 09:00", "2025-05-06 09:00", None, "2025-05-06 09:00"]),
                          "status": ["delivered", "failed", "failed", "delivered"], "attempt": [1, 1, 0, 1],
                          "segments": [1, 1, 1, 0], "fee": [0.04, -0.01, 0.04, 0.04],
                          "failure_reason": [None, "unknown", None, "blacklisted"]})
    with pytest.raises(ValueError) as err:
        validate(conform(frame))
    message = str(err.value)
    for problem in ("no vendor: 1 rows (first: row 1)", "neither a submit nor a receipt time: 1 rows (first: row 2)",
                    "attempt missing or below 1: 1 rows (first: row 2)", "segments below 1: 1 rows (first: row 3)",
                    "a negative fee: 1 rows (first: row 1)", "a failure reason on a delivered message: 1 rows (first: row 3)"):
        assert problem in message, problem
    validate(conform(frame.iloc[[0]]))  # the one good row


def test_conform_adds_missing_columns_and_localises_naive_times():
    frame = pd.DataFrame({"vendor": ["aliyun"], "phone": ["+8613800138000"], "attempt": [1],
                          "submit_time": pd.to_datetime(["2025-05-06 09:00"]), "status": ["delivered"], "extra": [1]})
    log = conform(frame)
    validate(log)
    assert log.loc[0, "submit_time"] == pd.Timestamp("2025-05-06 09:00", tz="Asia/Shanghai")
    assert "extra" not in log
    assert not log.loc[0, "is_probe"]


def test_display_labels_are_unique_so_workbooks_read_back():
    from collections import Counter

    from analysis.schema import LABELS

    for lang, labels in LABELS.items():
        repeated = [v for v, n in Counter(labels.values()).items() if n > 1]
        assert not repeated, (lang, repeated)
    assert set(LABELS["zh"]) == set(LABELS["en"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 4)), st.sampled_from(["aliyun", "tencent", None]),
                          st.one_of(st.none(), st.sampled_from(["m1", "m2", "m3"]))), max_size=40))
def test_sort_log_is_the_stable_sort_by_time_vendor_and_id(rows):
    """Few distinct times, vendors and ids: most rows tie, some on every key."""
    times = pd.Series([pd.NaT if t is None else pd.Timestamp("2025-05-01", tz="Asia/Shanghai") + pd.Timedelta(seconds=t)
                       for t, _, _ in rows], dtype="datetime64[ms, Asia/Shanghai]")
    log = pd.DataFrame({"submit_time": times, "vendor": pd.Series([v for _, v, _ in rows], dtype="category"),
                        "message_id": pd.array([m for _, _, m in rows], dtype="string[pyarrow]"),
                        "row": range(len(rows))}, index=range(100, 100 + len(rows)))
    want = log.sort_values(["submit_time", "vendor", "message_id"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(sort_log(log), want)


def test_a_plainly_valid_log_passes_without_pandera_and_a_problem_still_gets_its_message(monkeypatch):
    """The check of a valid log is the fast one (pandera is not consulted); a log with a
    problem still goes to pandera, whose error names it."""
    from analysis import schema

    frame = pd.DataFrame({"vendor": ["aliyun", "tencent"], "phone": ["+8613800138000", "+8613900139000"],
                          "submit_time": pd.to_datetime(["2025-05-06 09:00", "2025-05-06 10:00"]),
                          "status": ["delivered", "failed"], "failure_reason": [None, "blacklisted"],
                          "category": ["verification", "marketing"], "attempt": [1, 2], "fee": [0.04, 0.04]})
    log = conform(frame)
    asked = []
    real = schema.log_schema
    monkeypatch.setattr(schema, "log_schema", lambda: asked.append(1) or real())
    validate(log)
    assert asked == []
    bad = log.copy()
    bad.loc[1, "vendor"] = None
    with pytest.raises(ValueError, match=r"no vendor: 1 rows \(first: row 1\)"):
        validate(bad)
    with pytest.raises(ValueError, match="column 'fee' is missing"):
        validate(log.drop(columns="fee"))
    assert asked == [1, 1]


def test_a_word_outside_a_fixed_vocabulary_is_a_problem_even_as_a_categorical():
    """A categorical of other categories has a categorical dtype; its rows with a word
    not of the vocabulary are named (a hand-made ``success`` would count as not
    delivered), while one whose categories are all words of it passes at once."""
    frame = pd.DataFrame({"vendor": ["a", "a", "a"], "phone": ["+8613800138000"] * 3,
                          "submit_time": pd.to_datetime(["2025-05-06 09:00"] * 3),
                          "status": ["delivered", "failed", "delivered"], "category": ["marketing"] * 3,
                          "attempt": [1, 1, 1], "fee": [0.04] * 3})
    log = conform(frame)
    validate(log)
    mine = log.assign(status=pd.Categorical(["success", "failed", "success"]),  # its own categories
                      category=pd.Categorical(["marketing"] * 3, categories=["marketing", "promo"]))
    with pytest.raises(ValueError) as err:
        validate(mine)
    assert "a status outside delivered, failed, expired, rejected, unknown, pending: 2 rows (first: row 0)" in str(err.value)
    assert "category outside" not in str(err.value)  # an unused category is no row's word
    validate(log.assign(status=pd.Categorical(["delivered", "failed", "delivered"])))  # categories a subset of it
