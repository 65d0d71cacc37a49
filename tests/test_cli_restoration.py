"""``minidiff inpaint``, ``upscale`` and ``anomaly`` on PNG files (`minidiff.cli.inpaint`,
`minidiff.cli.upscale`, `minidiff.cli.anomaly`, `minidiff.runs.restoration`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from minidiff.applications.superres import SUPERRES_PRESETS, save_superres, train_superres
from minidiff.cli import main
from minidiff.data import load_digits
from minidiff.runs.restoration import png_bytes, quantise, read_grey_png
from tests.test_cli_errors import one_line
from tests.test_cli_train import fails, files, run_dir  # noqa: F401 - a fixture

torch.set_num_threads(1)


def _png(path, x):
    path.write_bytes(png_bytes(x))
    return path


@pytest.fixture(scope="module")
def digits_pngs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pngs")
    for i, x in enumerate(load_digits("test")[:3]):
        _png(folder / f"d{i}.png", x)
    return folder


def test_png_round_trip_and_quantise():
    """Pixel values on the 256 levels survive a PNG round trip; quantise moves values to
    the nearest of K levels and leaves values on them alone."""
    x = torch.arange(256, dtype=torch.float32).reshape(16, 16) / 127.5 - 1
    import io

    from PIL import Image

    back = np.asarray(Image.open(io.BytesIO(png_bytes(x))), dtype=np.float32) / 127.5 - 1
    np.testing.assert_allclose(back, x.numpy(), atol=1e-6)
    levels = torch.linspace(-1, 1, 17)
    torch.testing.assert_close(quantise(levels, 17), levels)
    assert set(quantise(torch.rand(100) * 2 - 1, 3).tolist()) <= {-1.0, 0.0, 1.0}


def test_inpaint_keeps_the_known_pixels_of_the_png(run_dir, digits_pngs, tmp_path, capsys):  # noqa: F811
    """White mask pixels are filled in; the others come back as they were in the PNG."""
    mask = torch.full((8, 8), -1.0)
    mask[:, 4:] = 1.0  # right half white: to fill in
    out = tmp_path / "y.png"
    argv = ["inpaint", "--checkpoint", str(run_dir), "--image", str(digits_pngs / "d0.png"),
            "--mask", str(_png(tmp_path / "m.png", mask)), "--out", str(out), "--steps", "5",
            "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    x, y = read_grey_png(digits_pngs / "d0.png"), read_grey_png(out)
    assert torch.equal(y[..., :4], x[..., :4])
    assert main([*argv[:5], "--mask", "left", "--out", str(tmp_path / "z.png"), "--steps", "5",
                 "--resamplings", "2", "--jump", "2", "--device", "cpu"]) == 0  # fmt: skip


def test_inpaint_errors_are_one_line_and_write_nothing(run_dir, digits_pngs, tmp_path, capsys):  # noqa: F811
    base = ["inpaint", "--checkpoint", str(run_dir), "--mask", "left", "--device", "cpu"]
    big = _png(tmp_path / "big.png", torch.zeros(9, 9))
    err = one_line(fails([*base, "--image", str(big), "--out", str(tmp_path / "o.png")], capsys))
    assert "9 x 9" in err and "8 x 8" in err
    err = one_line(fails([*base, "--image", str(tmp_path / "none.png"), "--out",
                          str(tmp_path / "o.png")], capsys))  # fmt: skip
    assert "not a readable image" in err
    taken = _png(tmp_path / "taken.png", torch.zeros(8, 8))
    before = taken.read_bytes()
    err = one_line(fails([*base, "--image", str(digits_pngs / "d0.png"), "--out", str(taken)],
                         capsys))  # fmt: skip
    assert "never overwritten" in err and taken.read_bytes() == before
    assert not (tmp_path / "o.png").exists()


def test_upscale_writes_a_high_resolution_png(tmp_path, capsys):
    config = replace(SUPERRES_PRESETS["digits-sr2"], T=20, steps=1, batch_size=2, sampling_steps=3)
    network, _ = train_superres(config, torch.zeros(4, 1, 8, 8))
    save_superres(tmp_path / "sr", network, config)
    low = _png(tmp_path / "low.png", torch.zeros(4, 4))
    assert main(["upscale", "--checkpoint", str(tmp_path / "sr"), "--image", str(low)]) == 0
    assert read_grey_png(tmp_path / "low_upscaled.png").shape == (1, 1, 8, 8)
    err = one_line(fails(["upscale", "--checkpoint", str(tmp_path / "sr"), "--image",
                          str(_png(tmp_path / "w.png", torch.zeros(8, 8)))], capsys))  # fmt: skip
    assert "expects 4 x 4" in err and not (tmp_path / "w_upscaled.png").exists()
    err = one_line(fails(["upscale", "--checkpoint", str(tmp_path), "--image", str(low),
                          "--out", str(tmp_path / "u.png")], capsys))  # fmt: skip
    assert "no super-resolution run" in err


def test_anomaly_writes_a_csv_row_and_a_map_per_image(run_dir, digits_pngs, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "scores.csv"
    argv = ["anomaly", "--checkpoint", str(run_dir), "--images", str(digits_pngs),
            "--out", str(out), "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    rows = out.read_text().splitlines()
    assert rows[0].startswith("file,bits_per_dim,anoddpm,recon_t") and len(rows) == 4
    assert all(np.isfinite([float(v) for v in row.split(",")[1:]]).all() for row in rows[1:])
    assert sorted(p.name for p in (tmp_path / "scores_maps").iterdir()) == [
        "d0.png", "d1.png", "d2.png"]  # fmt: skip
    before = files(tmp_path)
    err = one_line(fails(argv, capsys))
    assert "never overwritten" in err and files(tmp_path) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    err = one_line(fails([*argv[:4], str(empty), "--out", str(tmp_path / "e.csv")], capsys))
    assert "no .png" in err and not (tmp_path / "e.csv").exists()
