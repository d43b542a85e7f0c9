import pandas as pd

from analysis import read_send_log, read_store, write_store
from analysis.schema import validate


def test_store_round_trip_is_exact(fixtures, tmp_path):
    log = read_send_log([fixtures / "canonical.csv", fixtures / "gateway.log", fixtures / "twilio_console.csv"])
    path = write_store(log, tmp_path)
    assert sorted(p.name for p in path.iterdir()) == ["vendor=gateway", "vendor=huawei", "vendor=twilio"]
    assert (path / "vendor=gateway" / "month=2025-05" / "part-0.parquet").exists()
    back = read_store(tmp_path)
    validate(back)
    pd.testing.assert_frame_equal(back, log, check_categorical=False)


def test_write_replaces_atomically(fixtures, tmp_path):
    write_store(read_send_log(fixtures / "canonical.csv"), tmp_path)
    write_store(read_send_log(fixtures / "gateway.log"), tmp_path)
    assert set(read_store(tmp_path)["vendor"]) == {"gateway"}
    assert [p.name for p in tmp_path.iterdir()] == ["send_log"]  # no temp folders left
