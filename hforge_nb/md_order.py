"""Chemical order of melt-and-quench cells against the MD schedule.

``python -m hforge_nb.md_order --n-atoms 16 --seeds 12 --quench-rates 300 100 30 10 --densities 1.8 2.4
--out runs/md-order/md_order.json`` runs the ExTeP melt-and-quench of
notebook 01 (:func:`.melt_quench.melt_quench`, its default schedule apart
from the settings varied) for every setting and seed, without DFT, and
writes one row per cell (homopolar-bond and four-fold fractions, ExTeP
energy per atom) and per setting the mean homopolar fraction and how many
cells have no homopolar bond at all.  Quench rates are varied at the
schedule's density and densities at its quench rate.  A 16-atom cell takes
seconds at 100 K/ps and about 25 s at 10 K/ps on one core here.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ._atomic import write_json
from .melt_quench import MeltQuenchSchedule, melt_quench
from .structure_stats import structure_stats


def schedule_variants(base: MeltQuenchSchedule, quench_rates=(), densities=()) -> list[MeltQuenchSchedule]:
    """``base`` with each quench rate (K/ps, at its density) and each density (g/cm^3, at its rate), once each."""
    variants = [base] + [replace(base, quench_rate=float(r)) for r in quench_rates]
    variants += [replace(base, density=float(d)) for d in densities]
    return list(dict.fromkeys(variants))


def order_rows(schedules: list[MeltQuenchSchedule], seeds: range) -> list[dict]:
    """One row per schedule and seed: the setting, the seed and the relaxed cell's order and ExTeP energy (eV/atom)."""
    rows = []
    for schedule in schedules:
        for seed in seeds:
            result = melt_quench(replace(schedule, seed=seed))
            stats = structure_stats(result.atoms)
            rows.append({"quench_rate": schedule.quench_rate, "density": schedule.density, "seed": seed,
                         "homopolar_fraction": stats.homopolar_fraction, "sp3_fraction": stats.sp3_fraction,
                         "md_energy_per_atom_eV": result.energy_per_atom})
    return rows


def summarize_order(rows: list[dict]) -> list[dict]:
    """Per (quench rate, density), in the order first met: cells, mean homopolar fraction, cells without one."""
    settings = dict.fromkeys((row["quench_rate"], row["density"]) for row in rows)
    summary = []
    for rate, density in settings:
        homopolar = np.array([row["homopolar_fraction"] for row in rows
                              if (row["quench_rate"], row["density"]) == (rate, density)])
        summary.append({"quench_rate": rate, "density": density, "n_cells": len(homopolar),
                        "mean_homopolar_fraction": float(homopolar.mean()),
                        "n_without_homopolar_bonds": int((homopolar == 0).sum())})
    return summary


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    import argparse

    parser = argparse.ArgumentParser(description="Homopolar bonds of ExTeP melt-and-quench cells per MD setting")
    parser.add_argument("--n-atoms", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=12, help="seeds 1 to N per setting")
    parser.add_argument("--quench-rates", type=float, nargs="*", default=[], help="K/ps")
    parser.add_argument("--densities", type=float, nargs="*", default=[], help="g/cm^3")
    parser.add_argument("--out", required=True, help="JSON file")
    args = parser.parse_args(argv)
    base = MeltQuenchSchedule(n_atoms=args.n_atoms)
    rows = order_rows(schedule_variants(base, args.quench_rates, args.densities), range(1, args.seeds + 1))
    summary = summarize_order(rows)
    write_json(args.out, {"base_schedule": base.as_dict(), "summary": summary, "cells": rows})
    for row in summary:
        print(f"{row['quench_rate']:7g} K/ps {row['density']:4g} g/cm^3: mean homopolar fraction "
              f"{row['mean_homopolar_fraction']:.3f}, {row['n_without_homopolar_bonds']} of {row['n_cells']} without")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
