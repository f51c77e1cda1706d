"""Large-scale inference: time per atom and peak memory of chunked predictions from 10^2 to 10^5 atoms.

A base aBN cell comes from melt-and-quench (ExTeP, a fast 1000 K/ps quench);
the larger sizes repeat it n x n x n times, which changes nothing in the
cost per atom (the same local environments, the same number of blocks per
atom) and keeps the MD short.  Each size is predicted in a fresh process
(``hforge_nb.large_scale.measure_prediction`` without keeping the
blocks, which would take 0.8 MB per atom as float64), so its peak memory
is its own.  The model is notebook 03's (``--model``); its GPAW ratio uses
the largest amorphous cell of the reference data set (SCF + Fourier time
from the manifest).  Results go to ``benchmarks/results/large_scale.json``
after every size, so an interrupted run keeps what it measured.

    python benchmarks/large_scale.py --model runs/default/03_training/equivariant/model.pt \\
        --base-atoms 128 1000 --repeats 1 2 3 5 --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from _child import machine, provenance, run_child

RESULTS = Path(__file__).parent / "results" / "large_scale.json"
DATA = Path(__file__).parent.parent / "data" / "aBN-dzp"


def child(model_path: str, structure: str, repeats: int, threads: int) -> dict:
    """Predict the structure file repeated ``repeats``^3 times; time, memory and block counts."""
    import ase.io
    import torch

    from hforge_nb import io
    from hforge_nb.inference import ChunkConfig
    from hforge_nb.large_scale import measure_prediction

    torch.set_num_threads(threads)
    model = io.read_model(model_path).eval()
    atoms = ase.io.read(structure).repeat((repeats,) * 3)
    _, cost = measure_prediction(model, atoms, ChunkConfig(), keep=False)
    return {"repeats": repeats, "threads": threads, **cost.as_dict()}


def base_cell(n_atoms: int, folder: Path) -> tuple[Path, float]:
    """Melt-and-quench one aBN cell, written as extxyz; returns the file and the MD seconds."""
    import ase.io

    from hforge_nb.melt_quench import MeltQuenchSchedule, melt_quench

    schedule = MeltQuenchSchedule(n_atoms=n_atoms, melt_time=2.0, quench_rate=1000.0, anneal_time=1.0, seed=11)
    result = melt_quench(schedule)
    path = folder / f"aBN-{n_atoms}.extxyz"
    ase.io.write(path, result.atoms)
    return path, result.wall_seconds


def gpaw_reference(model_path: str, threads: int) -> dict:
    """ML against GPAW on the largest amorphous cell of the reference data set (in this process)."""
    import torch

    from hforge_nb import io
    from hforge_nb.dataset import read_manifest, read_samples
    from hforge_nb.inference import ChunkConfig
    from hforge_nb.large_scale import gpaw_timings, measure_prediction

    torch.set_num_threads(threads)
    largest = max(gpaw_timings(read_manifest(DATA)), key=lambda g: g["n_atoms"])
    record = read_samples(DATA)[largest["sample"]]
    model = io.read_model(model_path).eval()
    measure_prediction(model, record.atoms, ChunkConfig(), keep=False)  # warm-up
    _, cost = measure_prediction(model, record.atoms, ChunkConfig(), keep=False)
    return {"sample": largest["sample"], "n_atoms": largest["n_atoms"], "gpaw_seconds": largest["seconds"],
            "ml_seconds": cost.seconds, "gpaw_over_ml": largest["seconds"] / cost.seconds}


def _flatness(rows: list[dict], low: int = 1000) -> float | None:
    """Largest over smallest ms per atom of the sizes from ``low`` atoms up (None with fewer than two)."""
    per_atom = [r["ms_per_atom"] for r in rows if r["n_atoms"] >= low]
    return max(per_atom) / min(per_atom) if len(per_atom) > 1 else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/default/03_training/equivariant/model.pt")
    parser.add_argument("--base-atoms", type=int, nargs="+", default=[128, 1000])
    parser.add_argument("--repeats", type=int, nargs="+", default=[1, 2, 3, 5])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file (JSON)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)  # structure file, repeats
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.model, args.child[0], int(args.child[1]), args.threads)))
        return 0
    from hforge_nb._atomic import write_json

    report = {"benchmark": "large_scale", "model": args.model, "threads": args.threads, "machine": machine(), **provenance(),
              "gpaw": gpaw_reference(args.model, args.threads), "base_cells": [], "results": []}
    with tempfile.TemporaryDirectory() as folder:
        for n_base in args.base_atoms:
            path, md_seconds = base_cell(n_base, Path(folder))
            report["base_cells"].append({"n_atoms": n_base, "md_seconds": md_seconds})
            for repeats in args.repeats if n_base == max(args.base_atoms) else [1]:
                report["results"].append(run_child(__file__, ["--child", path, repeats, "--model", args.model,
                                                              "--threads", args.threads], args.threads))
                report["time_per_atom_max_over_min_from_1000"] = _flatness(report["results"])
                write_json(args.out, report)
                row = report["results"][-1]
                print(f"{row['n_atoms']} atoms: {row['seconds']:.1f} s, {row['ms_per_atom']:.1f} ms/atom, "
                      f"peak {row['peak_rss_GB']:.2f} GB", flush=True)
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
