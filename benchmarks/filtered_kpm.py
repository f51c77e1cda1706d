"""Filtered KPM on predicted matrices: seconds and peak memory of the DOS against the number of atoms.

A base aBN cell comes from melt-and-quench (notebook 06's default cell:
128 atoms, seed 11, a 1000 K/ps quench); larger sizes repeat it.  Each
size is predicted straight into H and S at k = 0
(``hforge_nb.inference.predict_gamma_matrices``, no record is built) and
its filtered KPM DOS computed
(``hforge_nb.filtered_kpm.filtered_kpm_dos_of_matrices``) in a fresh
process, so its peak memory is its own.  Results go to
``benchmarks/results/filtered_kpm.json`` after every size.

    python benchmarks/filtered_kpm.py --model runs/default/03_training/equivariant/model.pt --repeats 1 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from _child import machine, provenance, run_child

RESULTS = Path(__file__).parent / "results" / "filtered_kpm.json"


def child(model_path: str, structure: str, repeats: int, n_moments: int, n_random: int, degree: int,
          lanczos_steps: int, threads: int) -> dict:
    """Predict the structure repeated ``repeats`` times along each axis, then its filtered KPM; times and memory."""
    import time

    import ase.io
    import numpy as np
    import torch

    from hforge_nb import io
    from hforge_nb.filtered_kpm import OverlapFilter, filtered_kpm_dos_of_matrices
    from hforge_nb.inference import ChunkConfig, predict_gamma_matrices
    from hforge_nb.kpm import KPMConfig
    from hforge_nb.large_scale import PeakMemory

    torch.set_num_threads(threads)
    model = io.read_model(model_path).eval()
    atoms = ase.io.read(structure).repeat((repeats,) * 3)
    with PeakMemory() as memory:
        start = time.perf_counter()
        hamiltonian, overlap = predict_gamma_matrices(model, atoms, ChunkConfig())
        prediction_seconds = time.perf_counter() - start
        config = KPMConfig(n_moments=n_moments, n_random=n_random, lanczos_steps=lanczos_steps)
        result, _ = filtered_kpm_dos_of_matrices(hamiltonian, overlap, len(atoms), np.linspace(-10, 10, 201), config,
                                                 OverlapFilter(degree=degree))
    return {"repeats": repeats, "n_atoms": len(atoms), "n_orbitals": result.n_orbitals,
            "nonzeros_per_atom": overlap.nnz / len(atoms),  # of S(k = 0): periodic images fold onto one
            "prediction_seconds": prediction_seconds, "kpm_seconds": result.seconds,
            "kpm_seconds_per_atom": result.seconds / len(atoms), "kpm_bounds_eV": list(result.bounds),
            "kpm_resolution_eV": result.resolution_eV, "peak_rss_GB": memory.peak_GB}


def base_cell(folder: Path) -> Path:
    """Notebook 06's default 128-atom aBN cell, written as extxyz."""
    import ase.io

    from hforge_nb.melt_quench import MeltQuenchSchedule, melt_quench

    schedule = MeltQuenchSchedule(n_atoms=128, melt_time=2.0, quench_rate=1000.0, anneal_time=1.0, seed=11)
    path = folder / "aBN-128.extxyz"
    ase.io.write(path, melt_quench(schedule).atoms)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/default/03_training/equivariant/model.pt")
    parser.add_argument("--repeats", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--n-moments", type=int, default=64)
    parser.add_argument("--n-random", type=int, default=1)
    parser.add_argument("--degree", type=int, default=100)
    parser.add_argument("--lanczos-steps", type=int, default=20, help="Lanczos steps bracketing B's spectrum")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file (JSON)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)  # structure file, repeats
    args = parser.parse_args(argv)
    settings = [str(args.n_moments), str(args.n_random), str(args.degree), str(args.lanczos_steps)]
    if args.child:
        print(json.dumps(child(args.model, args.child[0], int(args.child[1]), args.n_moments, args.n_random,
                               args.degree, args.lanczos_steps, args.threads)))
        return 0
    from hforge_nb._atomic import write_json

    report = {"benchmark": "filtered_kpm", "model": args.model, "threads": args.threads,
              "n_moments": args.n_moments, "n_random": args.n_random, "degree": args.degree,
              "lanczos_steps": args.lanczos_steps,
              "machine": machine(), **provenance(), "results": []}
    with tempfile.TemporaryDirectory() as folder:
        path = base_cell(Path(folder))
        for repeats in args.repeats:
            report["results"].append(run_child(__file__, [
                "--child", path, repeats, "--model", args.model, "--n-moments", settings[0], "--n-random", settings[1],
                "--degree", settings[2], "--lanczos-steps", settings[3], "--threads", args.threads], args.threads))
            write_json(args.out, report)
            row = report["results"][-1]
            print(f"{row['n_atoms']} atoms: KPM {row['kpm_seconds']:.1f} s ({row['kpm_seconds_per_atom']:.2f} s per "
                  f"atom), peak {row['peak_rss_GB']:.2f} GB", flush=True)
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
