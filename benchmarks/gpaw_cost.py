"""GPAW-LCAO cost per sample against the number of atoms: wall time and peak memory.

Each size runs in a fresh process (so the peak memory is that sample's),
single-threaded, with the data set's settings: melt-and-quench aBN at
2.1 g/cm^3, then SCF and the Fourier step to H(R), S(R).  Results go to
``benchmarks/results/gpaw_cost.json`` (a size measured again replaces its
row, others stay); ``benchmarks/model_cost.py`` times the models on the
same structures for the ML-vs-DFT speed ratio.

    python benchmarks/gpaw_cost.py --sizes 8 16 32 64 128
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

from _child import machine, provenance, run_child

RESULTS = Path(__file__).parent / "results" / "gpaw_cost.json"


def measure_one(n_atoms: int, seed: int) -> dict:
    """Run one sample in this process; return its timings and peak memory."""
    from hforge_nb.gpaw_reference import GPAWSettings, gpaw_record
    from hforge_nb.melt_quench import MeltQuenchSchedule, melt_quench

    atoms = melt_quench(MeltQuenchSchedule(n_atoms=n_atoms, seed=seed)).atoms
    settings = GPAWSettings(grid_spacing=0.25, kpoint_spacing=1.0)
    reference = gpaw_record(atoms, settings)
    return {
        "n_atoms": n_atoms,
        "seed": seed,
        "n_orbitals": reference.record.n_orbitals,
        "n_blocks": reference.record.n_blocks,
        "scf_kgrid": list(reference.scf_kgrid),
        "fourier_kgrid": list(reference.fourier_kgrid),
        "scf_iterations": reference.scf_iterations,
        "seconds": reference.timings,
        "peak_rss_GB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "settings": settings.as_dict(),
    }


def _merged(rows: list[dict]) -> list[dict]:
    """The results file's samples with ``rows`` added, a size measured again replacing its old row."""
    previous = json.loads(RESULTS.read_text())["samples"] if RESULTS.is_file() else []
    by_size = {row["n_atoms"]: row for row in previous + rows}
    return [by_size[size] for size in sorted(by_size)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child mode: one size, JSON to stdout
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure_one(args.one, args.seed)))
        return 0
    rows = []
    for size in args.sizes:
        rows.append(run_child(__file__, ["--one", size, "--seed", args.seed]))
        print(f"{size:5d} atoms: {rows[-1]['seconds']}, {rows[-1]['peak_rss_GB']:.2f} GB", flush=True)
    from hforge_nb._atomic import write_json

    write_json(RESULTS, {"benchmark": "gpaw_cost", "machine": machine(), **provenance(), "samples": _merged(rows)})
    print(f"-> {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
