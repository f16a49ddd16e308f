"""load_csv_series leaves nothing out silently: bad cells, time stamps and columns are named."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from darts_mim.datasets import load_csv_series

DATA = Path(__file__).parent / "data"
ETTH1 = DATA / "ETTh1_first2000.csv"

HOURS = [f"2016-07-01 {h:02d}:00:00" for h in range(8)]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _hourly(path: Path, cell: str = "5.5", line: int = 7, header: str = "date,HUFL,OT") -> Path:
    """An hourly CSV of 8 rows (lines 2-9); the HUFL cell on ``line`` is ``cell``."""
    rows = [f"{t},{h}.5,{2 * h}" for h, t in enumerate(HOURS)]
    rows[line - 2] = f"{HOURS[line - 2]},{cell},{2 * (line - 2)}"
    return _write(path, "\n".join([header, *rows]) + "\n")


# ------------------------------------------------------------------ cells that are not numbers


def test_decimal_comma_cell_is_refused_with_column_line_time_and_value(tmp_path):
    """Issue 23: one "12,5" made the whole column disappear (2 components instead of 3)."""
    path = _hourly(tmp_path / "ett.csv", cell='"12,5"')
    with pytest.raises(ValueError) as err:
        load_csv_series(path)
    text = str(err.value)
    for needle in (
        "ett.csv",
        "column 'HUFL'",
        "'12,5'",
        "line 7",
        "2016-07-01 05:00:00",
        'decimal=","',
        "--decimal ,",
        "drop=['HUFL']",
        "--drop HUFL",
    ):
        assert needle in text, (needle, text)


def test_drop_leaves_a_column_out_explicitly(tmp_path):
    path = _hourly(tmp_path / "ett.csv", cell='"12,5"')
    series = load_csv_series(path, drop="HUFL")
    assert list(series.components) == ["OT"]
    assert len(series) == 8
    assert list(load_csv_series(path, drop=["HUFL"]).components) == ["OT"]


def test_drop_of_an_unknown_column_or_with_value_cols(tmp_path):
    path = _hourly(tmp_path / "ett.csv")
    with pytest.raises(ValueError, match=r"no column\(s\) \['hufl'\] to drop"):
        load_csv_series(path, drop="hufl")
    with pytest.raises(ValueError, match="not both"):
        load_csv_series(path, value_cols="OT", drop="HUFL")


def test_decimal_comma_file_loads_with_decimal(tmp_path):
    path = _write(
        tmp_path / "messwerte.csv",
        "date;a;b\n2020-01-01;1,5;2\n2020-01-02;12,5;3,25\n2020-01-03;-0,75;4\n",
    )
    series = load_csv_series(path, sep=";", decimal=",")
    np.testing.assert_array_equal(series.values(), [[1.5, 2.0], [12.5, 3.25], [-0.75, 4.0]])
    # read with the defaults it is one column "date;a;b": refused, with the separator to use
    with pytest.raises(ValueError, match=r'separated by ";", not ",": pass sep=";"'):
        load_csv_series(path)


def test_decimal_point_in_a_decimal_comma_file_is_refused(tmp_path):
    path = _write(
        tmp_path / "mixed.csv", 'date,a\n2020-01-01,"1,5"\n2020-01-02,2.5\n2020-01-03,"3,5"\n'
    )
    with pytest.raises(ValueError, match=r"'2\.5' on line 3 \(date 2020-01-02\)"):
        load_csv_series(path, decimal=",")


def test_text_column_is_refused_unless_dropped(tmp_path):
    rows = "".join(f"{t},north,{h}\n" for h, t in enumerate(HOURS))
    path = _write(tmp_path / "stations.csv", "date,station,OT\n" + rows)
    with pytest.raises(ValueError) as err:
        load_csv_series(path)
    text = str(err.value)
    assert "column 'station' holds text" in text and "'north' on line 2" in text
    assert "drop=['station']" in text and "--drop station" in text
    assert list(load_csv_series(path, drop="station").components) == ["OT"]
    assert list(load_csv_series(path, value_cols="OT").components) == ["OT"]


def test_unnamed_index_column_is_refused_unless_dropped(tmp_path):
    """DataFrame.to_csv() without index=False writes the row numbers under an empty header cell:
    they were loaded as a component "Unnamed: 0" (the row number as a feature)."""
    frame = pd.DataFrame({"date": HOURS, "OT": np.arange(8.0)})
    path = tmp_path / "with_index.csv"
    frame.to_csv(path)
    with pytest.raises(ValueError) as err:
        load_csv_series(path)
    text = str(err.value)
    assert "column 1 has no name in the header" in text and "index=False" in text
    assert "drop=['Unnamed: 0']" in text and "--drop 'Unnamed: 0'" in text
    assert list(load_csv_series(path, drop="Unnamed: 0").components) == ["OT"]
    frame.to_csv(path, index=False)
    assert list(load_csv_series(path).components) == ["OT"]


def test_missing_value_markers_stay_nan(tmp_path):
    """ "n/a", "NA" and empty cells are missing values (NaN), refused later by MIMModel.fit."""
    for cell in ("n/a", "NA", ""):
        series = load_csv_series(_hourly(tmp_path / "gap.csv", cell=cell))
        values = series.values()
        assert list(series.components) == ["HUFL", "OT"]
        assert np.isnan(values[5, 0]) and np.isfinite(np.delete(values.ravel(), 10)).all()


def test_line_numbers_count_blank_lines(tmp_path):
    path = _write(tmp_path / "blank.csv", "date,a\n\n2020-01-01,1\n\n2020-01-02,x\n2020-01-03,3\n")
    with pytest.raises(ValueError, match=r"'x' on line 5 \(date 2020-01-02\)"):
        load_csv_series(path)


def test_repeated_column_name_is_refused(tmp_path):
    """pandas would load the second "a" as "a.1"."""
    path = _write(
        tmp_path / "twice.csv", "date,a,a\n2020-01-01,1,2\n2020-01-02,1,2\n2020-01-03,1,2\n"
    )
    with pytest.raises(ValueError, match=r"'a' appears more than once in the header"):
        load_csv_series(path)


# ------------------------------------------------------------------ time stamps


def test_time_stamp_that_does_not_parse_is_named(tmp_path):
    path = _hourly(tmp_path / "ett.csv")
    text = path.read_text().replace("2016-07-01 05:00:00", "2016-07-01 25:00:00")
    path.write_text(text)
    with pytest.raises(ValueError, match=r"'2016-07-01 25:00:00' on line 7 that is not a date"):
        load_csv_series(path)


def test_first_column_of_dates_with_one_bad_cell_is_not_dropped(tmp_path):
    """A first column of dates not named like one, with one bad cell, was silently dropped (and
    the series got a RangeIndex)."""
    days = [f"2016-07-0{d}" for d in range(1, 8)]
    days[3] = "2016-07-4x"
    path = _write(
        tmp_path / "when.csv", "when,a\n" + "".join(f"{d},{i}\n" for i, d in enumerate(days))
    )
    with pytest.raises(ValueError, match=r"time column 'when' has '2016-07-4x' on line 5"):
        load_csv_series(path)


def test_empty_time_cell_is_refused(tmp_path):
    path = _write(tmp_path / "hole.csv", "date,a\n2020-01-01,1\n,2\n2020-01-03,3\n")
    with pytest.raises(ValueError, match="has an empty cell on line 3"):
        load_csv_series(path)


def test_repeated_time_stamps_are_named(tmp_path):
    path = _hourly(tmp_path / "dup.csv")
    path.write_text(path.read_text().replace("2016-07-01 05:00:00", "2016-07-01 04:00:00"))
    with pytest.raises(ValueError, match=r"2016-07-01 04:00:00 appears on lines 6 and 7"):
        load_csv_series(path)
    # also when the missing dates are filled (which sorts the rows)
    with pytest.raises(ValueError, match="appears on lines 6 and 7"):
        load_csv_series(path, fill_missing_dates=True)


def test_rows_out_of_time_order_are_named(tmp_path):
    path = _write(
        tmp_path / "order.csv", "date,a\n2020-01-01,1\n2020-01-03,2\n2020-01-02,3\n2020-01-04,4\n"
    )
    with pytest.raises(ValueError, match=r"line 4 \(date 2020-01-02\) comes after line 3"):
        load_csv_series(path)
    filled = load_csv_series(path, fill_missing_dates=True)  # sorted
    np.testing.assert_array_equal(filled.values().ravel(), [1, 3, 2, 4])


def test_fill_missing_dates_refuses_a_stamp_off_the_grid(tmp_path):
    """Reindexing to a weekly grid silently dropped a row stamped mid-week."""
    path = _write(
        tmp_path / "weekly.csv",
        "DATE,ili\n2020-01-05,1\n2020-01-12,2\n2020-01-19,3\n2020-01-22,9\n2020-02-02,5\n",
    )
    with pytest.raises(ValueError, match=r"2020-01-22 00:00:00 on line 5 is not on the grid"):
        load_csv_series(path, fill_missing_dates=True, freq="7D")


def test_etth1_still_loads_the_same():
    series = load_csv_series(ETTH1)
    frame = pd.read_csv(ETTH1)
    assert list(series.components) == list(frame.columns[1:])
    np.testing.assert_array_equal(series.values(), frame.iloc[:, 1:].to_numpy())
    assert series.freq_str == "h"


def _dated_csv(path: Path, stamps, column: str = "date") -> Path:
    pd.DataFrame({column: stamps, "a": np.arange(len(stamps), dtype=float)}).to_csv(
        path, index=False
    )
    return path


def test_day_first_dates_are_never_read_month_first_silently(tmp_path):
    """Monthly dates written day first (01/02/2020 = 1 February) read month first as 12 days of
    January without a word; now both readings are refused until dayfirst= says which."""
    months = pd.date_range("2020-01-01", periods=12, freq="MS")
    for fmt in ("%d/%m/%Y", "%d.%m.%Y"):
        path = _dated_csv(tmp_path / "monthly.csv", months.strftime(fmt))
        with pytest.raises(
            ValueError,
            match=r"^monthly.csv: the dates of column 'date' read day first or month first alike "
            r"\('01.02.2020' is 02 January 2020 month first, 01 February 2020 day first\)\. Say "
            r"which: dayfirst=True or False \(darts-mim: --date-order",
        ):
            load_csv_series(path)
        assert list(load_csv_series(path, dayfirst=True).time_index) == list(months)
        assert load_csv_series(path, dayfirst=False).time_index[1] == pd.Timestamp("2020-01-02")


def test_day_first_dates_read_as_the_column_allows(tmp_path):
    """One order reads every date (a 13th day), or only one gives evenly spaced stamps (hours over
    1-2 March, which month first jump from 3 January to 3 February): that order, without asking.
    ISO dates ignore dayfirst (pandas would read 2024-01-02 as 1 February)."""
    days = pd.date_range("2024-01-01", periods=40, freq="D")
    # not named like a time column: found as one although month first fails from the 13th
    for fmt, column in (("%d/%m/%Y", "x"), ("%m/%d/%Y", "date")):
        loaded = load_csv_series(_dated_csv(tmp_path / "days.csv", days.strftime(fmt), column))
        assert list(loaded.time_index) == list(days) and loaded.components.tolist() == ["a"]
    hours = pd.date_range("2024-03-01", periods=48, freq="h")
    loaded = load_csv_series(_dated_csv(tmp_path / "hours.csv", hours.strftime("%d.%m.%Y %H:%M")))
    assert list(loaded.time_index) == list(hours)
    iso = _dated_csv(tmp_path / "iso.csv", days.strftime("%Y-%m-%d"))
    assert list(load_csv_series(iso, dayfirst=True).time_index) == list(days)
    # an order that does not read the dates: the first bad cell is named
    with pytest.raises(ValueError, match=r"has '01/13/2024' on line 14"):
        load_csv_series(_dated_csv(tmp_path / "us.csv", days.strftime("%m/%d/%Y")), dayfirst=True)


# ------------------------------------------------------------------ user data defects (0.14)


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("timestamp,a\n1577836800,1\n1577840400,2\n1577844000,3\n", "timestamp"),  # Unix seconds
        ("date,a\n2000,1\n2001,2\n2002,3\n", "date"),  # years
        ("year,month,value\n2020,1,5\n2020,2,6\n2020,3,7\n", "month"),
    ],
)
def test_numeric_time_column_is_refused_not_read_as_nanoseconds(tmp_path, text, column):
    # pandas read the numbers as nanoseconds after 1970: 2000, 2001, 2002 became three time
    # stamps 2 microseconds into 1970, a series with a frequency of one nanosecond
    path = _write(tmp_path / "numbers.csv", text)
    with pytest.raises(ValueError, match=rf"time column '{column}' holds numbers .* line 2"):
        load_csv_series(path)
    with pytest.raises(ValueError, match=r"drop=\["):
        load_csv_series(path, time_col=column)
    # step numbers: left out, the series is indexed 0, 1, 2
    assert load_csv_series(path, drop=[column]).time_index.equals(pd.RangeIndex(3))


def test_utc_offsets_changing_with_daylight_saving_time_load_as_utc(tmp_path):
    # local time written with its offset (DataFrame.to_csv of a Europe/Amsterdam index): the
    # offset changes in the column, which pandas refused ("Tz-aware datetime.datetime cannot be
    # converted to datetime64 unless utc=True") and the loader passed on as the error
    local = pd.date_range("2020-10-25 00:00", periods=6, freq="h", tz="Europe/Amsterdam")
    path = tmp_path / "local.csv"
    pd.DataFrame({"date": local, "a": np.arange(6.0)}).to_csv(path, index=False)
    series = load_csv_series(path)
    expected = pd.date_range("2020-10-24 22:00", periods=6, freq="h")  # the same instants, UTC
    assert series.time_index.equals(expected)
    np.testing.assert_array_equal(series.values()[:, 0], np.arange(6.0))


def test_day_first_dates_give_no_pandas_warning_about_dayfirst(tmp_path):
    # guessing the format made pandas warn "Parsing dates in %d/%m/%Y format when dayfirst=False
    # (the default) was specified. Pass `dayfirst=True`" (and "... dayfirst=True was specified"
    # for ISO dates with a time), about a column that was read right
    day_first = _write(tmp_path / "d.csv", "date,a\n13/01/2020,1\n14/01/2020,2\n15/01/2020,3\n")
    iso = _write(
        tmp_path / "i.csv", "date,a\n2020-03-29 01:00,1\n2020-03-29 02:00,2\n2020-03-29 03:00,3\n"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # (pandas' warning from Cython ignores "error")
        assert load_csv_series(day_first).start_time() == pd.Timestamp("2020-01-13")
        assert load_csv_series(iso).start_time() == pd.Timestamp("2020-03-29 01:00")
    assert not [str(w.message) for w in caught if "dayfirst" in str(w.message)]


def test_header_without_rows_is_refused_as_empty(tmp_path):
    # it asked for freq=, and with freq="D" gave an empty series
    path = _write(tmp_path / "empty.csv", "date,a\n")
    for kwargs in ({}, {"freq": "D"}):
        with pytest.raises(ValueError, match="has a header .* but no data rows"):
            load_csv_series(path, **kwargs)


def test_thousands_separator_is_named_before_the_decimal_comma_advice(tmp_path):
    # the error advised decimal="," for "1,200", which then loaded it as 1.2 without a word
    path = _write(
        tmp_path / "t.csv", 'date,a\n2020-01-01,"1,200"\n2020-01-02,"1,300"\n2020-01-03,900\n'
    )
    with pytest.raises(ValueError, match=r"If ',' separates thousands \('1,200' meaning 1200\)"):
        load_csv_series(path)
    semi = _write(
        tmp_path / "s.csv", "date;a\n2020-01-01;1.200,5\n2020-01-02;1.300,5\n2020-01-03;4,5\n"
    )
    with pytest.raises(ValueError, match=r"If '\.' separates thousands .*thousands='\.'"):
        load_csv_series(semi, sep=";", decimal=",")
