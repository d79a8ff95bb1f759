"""`ionwire bench`: every report names the machine and the load around the timing."""
import json
import os

from ionwire.coupling.cli import main


def test_bench_kmc_reports_the_machine(capsys):
    assert main(["bench", "kmc", "--cells", "4", "4", "4", "--events", "2000", "--warmup", "100", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    m = out["machine"]
    assert m["cores"] == os.cpu_count() and m["cpu_model"] and m["cpu_model"] != "unknown"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            assert any(line.startswith("model name") and m["cpu_model"] in line for line in f)
    for key in ("load_average_before", "load_average_after"):
        assert len(out[key]) == 3 and all(x >= 0 for x in out[key])
    assert out["events"] == 2000


def test_bench_text_names_the_machine(capsys):
    assert main(["bench", "kmc", "--cells", "4", "4", "4", "--events", "2000", "--warmup", "100"]) == 0
    text = capsys.readouterr().out
    assert "machine: " in text and f"{os.cpu_count()} logical cores" in text
    assert "load_average_before:" in text and "load_average_after:" in text
