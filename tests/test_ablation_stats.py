"""The ablation summary's statistics (scripts/ablation.py) on a small hand-made table."""

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("ablation", os.path.join(ROOT, "scripts", "ablation.py"))
ablation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ablation)


def row(variant, seed, mpjpe, split="studio", lam=1.0):
    lam_s, lam_t = {"none": (0.0, 0.0), "spatial": (lam, 0.0), "temporal": (0.0, lam)}.get(variant, (lam, lam))
    return {"lifter": "tcn", "variant": variant, "lambda_spatial": str(lam_s), "lambda_temporal": str(lam_t),
            "seed": str(seed), "split": split, "mpjpe": str(mpjpe)}


def test_paired_differences_and_t_intervals_by_hand():
    rows = [row("none", 0, 100), row("none", 1, 110), row("none", 2, 120),
            row("both", 0, 95), row("both", 1, 104), row("both", 2, 118), row("both", 3, 50),  # seed 3: no pair
            row("spatial", 0, 101),  # one pair: no interval
            row("both", 0, 90, lam=0.3), row("both", 1, 100, lam=0.3)]
    out = {d["variant"]: d for d in ablation.paired_differences(rows, "mpjpe")}
    both = out["both"]
    # differences -5, -6, -2: mean -13/3, sd sqrt(13/3), half width t(2) * sd / sqrt(3) with t(2) = 4.303
    assert both["n"] == 3
    assert both["mean"] == pytest.approx(-4.333333, abs=1e-6)
    assert both["low"] == pytest.approx(-9.504893, abs=1e-5) and both["high"] == pytest.approx(0.838226, abs=1e-5)
    assert out["spatial"]["n"] == 1 and out["spatial"]["mean"] == 1.0 and out["spatial"]["low"] is None
    sweep = out["both λ=0.3"]  # the lambda sweep is its own row: differences -10, -10
    assert sweep["n"] == 2 and sweep["mean"] == -10.0 and sweep["low"] == sweep["high"] == -10.0
    assert "none" not in out


def test_splits_are_paired_separately_and_the_table_shows_them():
    rows = [row("none", 0, 100), row("none", 1, 100), row("both", 0, 90), row("both", 1, 94),
            row("none", 0, 200, "wild_noisy"), row("none", 1, 200, "wild_noisy"),
            row("both", 0, 210, "wild_noisy"), row("both", 1, 210, "wild_noisy")]
    out = {(d["split"], d["variant"]): d for d in ablation.paired_differences(rows, "mpjpe")}
    assert out[("studio", "both")]["mean"] == -8.0 and out[("wild_noisy", "both")]["mean"] == 10.0
    # differences -10, -6: sd 2*sqrt(2), t(1) = 12.706
    assert out[("studio", "both")]["high"] == pytest.approx(-8.0 + 12.706 * 2.0, abs=1e-9)
    table = ablation.summary_table(rows)
    assert "| tcn | studio | both | 2 | -8.0 [-33.4, +17.4] |" in table
    assert "| tcn | wild_noisy | both | 2 | +10.0 [+10.0, +10.0] |" in table


def test_t_quantiles():
    assert ablation.t_quantile_975(1) == 12.706 and ablation.t_quantile_975(4) == 2.776
    assert ablation.t_quantile_975(100) == 1.96
    with pytest.raises(ValueError):
        ablation.t_quantile_975(0)


def test_only_runs_at_the_current_budget_count(monkeypatch):
    monkeypatch.setitem(ablation.BUDGETS, "tcn", dict(epochs=4, epoch_size=640, batch_size=32, lr_decay=0.7))
    assert ablation.budget_steps("tcn") == 80  # 4 epochs of 640 / 32 steps
    assert "train.batch_size=32" in ablation.budget_overrides("tcn")
    rows = [dict(row("none", 0, 100.0), steps="80"), dict(row("none", 1, 90.0), steps="1024"),
            dict(row("none", 2, 95.0), steps="80.0")]
    kept = ablation.at_current_budget(rows)
    assert [r["seed"] for r in kept] == ["0", "2"]
    assert ablation.run_dir_name(("tcn", "none", 0.0, 0.0, 0)) == "tcn_none_s0_t0_seed0_80steps"
