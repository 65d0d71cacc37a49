"""benchmarks/gpu.py, the GPU run, in its CPU smoke mode: the same code paths at tiny
sizes, so that the script works the day a GPU is at hand."""

import json

from benchmarks import gpu


def test_gpu_run_smoke_mode_measures_every_part_on_the_cpu(tmp_path):
    """--smoke on the CPU: the three eager training-step variants (fp32, bf16,
    bf16 + channels_last; compile is left out of the smoke run) each give a positive step
    time, images/s = batch / step time and the AdamW and EMA times, and the digits part
    trains, samples and scores one tiny run; everything lands in gpu.json."""
    report = gpu.main(smoke=True, out=tmp_path)
    rows = report["step_rows"]
    assert [r["variant"] for r in rows] == ["fp32", "bf16", "bf16 channels_last"]
    for row in rows:
        assert row["status"] == "ok", row.get("error")
        assert row["step_s"] > 0 and row["adamw_s"] > 0 and row["ema_s"] > 0
        assert abs(row["images_per_s"] - row["batch"] / row["step_s"]) < 1e-9
    assert [r["precision_used"] for r in rows] == ["fp32", "bf16", "bf16"]
    assert rows[2]["memory_format_used"] == "channels_last"
    (run,) = report["digits"]["runs"]
    assert run["steps"] == 3 and 0 <= run["confident_share"] <= 1
    assert run["met"] == (report["digits"]["seconds_to_95"] is not None)
    assert json.loads((tmp_path / "gpu.json").read_text())["smoke"] is True
