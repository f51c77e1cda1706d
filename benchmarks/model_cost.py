"""Model cost: training time per epoch and per sample, inference time per atom and peak memory, ML vs GPAW.

Each (model, measurement) runs in a fresh single-threaded process, so its
peak memory is its own.  Models are the default configurations of
notebooks 02 and 03 (the baseline's width matched to the equivariant
model's parameter count), built from scratch; training time is the mean
of a few epochs on the committed training cells (the baseline's rotated
each epoch, as notebook 03 trains it), inference time is
the shortest of three ``model.predict`` calls on each committed cell and on the larger cells of
``benchmarks/results/gpaw_cost.json`` (rebuilt from their melt-and-quench
seed).  The ML/GPAW ratio divides the inference time of a cell by the GPAW
time (SCF + Fourier step) recorded for that same cell in the data set's
manifest or in ``gpaw_cost.json``.  Results go to
``benchmarks/results/model_cost.json``.

    python benchmarks/model_cost.py --epochs 3
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from _child import machine, provenance, run_child

RESULTS = Path(__file__).parent / "results" / "model_cost.json"
DATA = Path(__file__).parent.parent / "data" / "aBN-dzp"
GPAW_COST = Path(__file__).parent / "results" / "gpaw_cost.json"
REPEATS = 3  # timed predictions per cell; the shortest is kept (the others met other load)


def _models(records):
    from hforge_nb.models import BaselineConfig, EquivariantConfig, baseline_config_for_budget, build_fitted_model

    equivariant = build_fitted_model("equivariant", EquivariantConfig(), records)
    baseline_config = baseline_config_for_budget(BaselineConfig(), records[0].basis, equivariant.parameter_count())
    return {"equivariant": equivariant, "baseline": build_fitted_model("baseline", baseline_config, records)}


def measure_training(kind: str, epochs: int) -> dict:
    """Seconds per epoch and per training structure of ``epochs`` epochs on the committed training cells
    (the baseline's rotated at random each epoch, as notebook 03's ``augment_baseline`` does)."""
    from hforge_nb.dataset import distinct_split, read_samples
    from hforge_nb.training import TrainingConfig, train

    samples = read_samples(DATA, "train")
    split, _ = distinct_split(samples)
    train_set, val_set = [samples[n] for n in split.train], [samples[n] for n in split.validation]
    model = _models(train_set)[kind]
    with tempfile.TemporaryDirectory() as folder:
        config = TrainingConfig(epochs=epochs, early_stopping_patience=epochs + 1,
                                augment_rotations=kind == "baseline")  # as notebook 03 trains them
        result = train(model, train_set, val_set, config, folder, progress=False)
    per_epoch = sum(row["seconds"] for row in result.log) / len(result.log)
    return {"model": kind, "measurement": "training", "epochs": epochs, "n_train": len(train_set),
            "train_atoms": sum(r.n_atoms for r in train_set), "seconds_per_epoch": per_epoch,
            "seconds_per_sample": per_epoch / len(train_set), "parameters": model.parameter_count(),
            "peak_rss_GB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def measure_inference(kind: str) -> dict:
    """``predict`` time of every committed cell, per atom, and the ratio to its GPAW time."""
    from hforge_nb.dataset import read_manifest, read_samples

    manifest = {s["name"]: s for s in read_manifest(DATA)["samples"]}
    samples = read_samples(DATA)
    model = _models([samples[n] for n in sorted(samples) if "train" in n][:2])[kind]
    rows = []
    for name, record in sorted(samples.items(), key=lambda item: item[1].n_atoms):
        seconds, _ = _prediction_seconds(model, record)
        gpaw = sum(manifest[name]["timings_s"].values())
        rows.append({"sample": name, "n_atoms": record.n_atoms, "n_blocks": record.n_blocks, "seconds": seconds,
                     "seconds_per_atom": seconds / record.n_atoms, "gpaw_seconds": gpaw,
                     "ml_over_gpaw": seconds / gpaw})
    rows += [_gpaw_cost_sample(model, sample) for sample in _gpaw_only_samples(manifest.values())]
    return {"model": kind, "measurement": "inference", "samples": rows,
            "peak_rss_GB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def _prediction_seconds(model, structure, repeats: int = REPEATS) -> tuple[float, object]:
    """The shortest of ``repeats`` timed ``model.predict(structure)`` calls, after one untimed call, and the
    prediction."""
    prediction = model.predict(structure)  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        prediction = model.predict(structure)
        times.append(time.perf_counter() - started)
    return min(times), prediction


def _gpaw_only_samples(data_set_samples) -> list[dict]:
    """Rows of ``gpaw_cost.json`` for sizes the data set does not hold (larger cells GPAW was timed on)."""
    if not GPAW_COST.is_file():
        return []
    sizes = {sample["n_atoms"] for sample in data_set_samples}
    return [row for row in json.loads(GPAW_COST.read_text())["samples"] if row["n_atoms"] not in sizes]


def _gpaw_cost_sample(model, row: dict) -> dict:
    """``predict`` time of the melt-quenched cell ``gpaw_cost.py`` timed GPAW on, from its structure alone."""
    from hforge_nb.melt_quench import MeltQuenchSchedule, melt_quench

    atoms = melt_quench(MeltQuenchSchedule(n_atoms=row["n_atoms"], seed=row.get("seed", 1))).atoms
    seconds, prediction = _prediction_seconds(model, atoms)
    gpaw = sum(row["seconds"].values())
    return {"sample": f"gpaw_cost.json, {row['n_atoms']} atoms", "n_atoms": row["n_atoms"],
            "n_blocks": prediction.n_blocks, "seconds": seconds, "seconds_per_atom": seconds / row["n_atoms"],
            "gpaw_seconds": gpaw, "ml_over_gpaw": seconds / gpaw}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)  # child mode: kind, measurement
    args = parser.parse_args(argv)
    if args.child:
        import torch

        torch.set_num_threads(1)
        kind, measurement = args.child
        row = measure_training(kind, args.epochs) if measurement == "training" else measure_inference(kind)
        print(json.dumps(row))
        return 0
    rows = []
    for kind in ("equivariant", "baseline"):
        for measurement in ("training", "inference"):
            rows.append(run_child(__file__, ["--child", kind, measurement, "--epochs", args.epochs]))
            print(f"{kind} {measurement}: peak {rows[-1]['peak_rss_GB']:.2f} GB", flush=True)
    from hforge_nb._atomic import write_json

    write_json(RESULTS, {"benchmark": "model_cost", "threads": 1, "machine": machine(), **provenance(), "results": rows})
    print(f"-> {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
