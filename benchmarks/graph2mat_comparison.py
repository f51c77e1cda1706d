"""Our equivariant model against graph2mat's MACE-based model, side by side in one run on the same data.

Both are trained from scratch on the committed training cells with the
same split as notebook 03 (``dataset.distinct_split``), for the same number
of epochs (or, with ``--g2m-epochs``, graph2mat for more of its cheaper
epochs), at about the same parameter count (graph2mat's MACE width is
chosen to match ours).  graph2mat learns H only; ours learns H and S with
one network.  graph2mat is trained at each of ``--g2m-learning-rates`` and
the rate with the best validation error is kept (ours uses notebook 03's
settings).  Both are scored on graph2mat's label layout (every H value of
atom pairs whose orbitals overlap, :func:`hforge_nb.peers.score_h`) on the
test cells and the 32- and 64-atom held-out cells.  Inference time per
atom and peak memory are measured on the 64-atom cell, from the record to
the predicted values (graph building included: ``ms_per_atom``) and for
the network alone on a prebuilt graph (``network_ms_per_atom``).  Results go to
``benchmarks/results/graph2mat_comparison.json``.

    python benchmarks/graph2mat_comparison.py --epochs 40
    python benchmarks/graph2mat_comparison.py --epochs 40 --g2m-epochs 120 --g2m-learning-rates 1e-2 \
        --output benchmarks/results/graph2mat_comparison_same_time.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

from _child import machine, provenance

RESULTS = Path(__file__).parent / "results" / "graph2mat_comparison.json"
DATA = Path(__file__).parent.parent / "data" / "aBN-dzp"
HELD_OUT = ["aBN-0032-holdout-00", "aBN-0064-holdout-00"]
TIMED = "aBN-0064-holdout-00"


def _ours(train_set, val_set, epochs: int, seed: int, threads: int, folder: Path):
    """Notebook 03's equivariant model and training settings."""
    from hforge_nb.models import build_matched_models
    from hforge_nb.training import TrainingConfig, train

    model = build_matched_models(["equivariant"], train_set, seed=seed)["equivariant"]
    config = TrainingConfig(epochs=epochs, learning_rate=1e-2, lr_patience=5, early_stopping_patience=epochs + 1,
                            seed=seed, threads=threads)
    result = train(model, train_set, val_set, config, folder, progress=False)
    return result.model, {"seconds_per_epoch": result.seconds / max(len(result.log), 1), "best_epoch": result.best_epoch}


def _graph2mat(train_set, val_set, processor, means, budget: int, epochs: int, rates, seed: int, threads: int):
    """graph2mat's model at each learning rate; the one with the best validation MAE."""
    from hforge_nb import peers

    config = peers.graph2mat_config_for_budget(processor, budget, peers.Graph2MatConfig(seed=seed, threads=threads))
    train_batches = [peers.graph2mat_data(r, processor, means) for r in train_set]
    val_batches = [peers.graph2mat_data(r, processor, means) for r in val_set]
    runs = []
    for rate in rates:
        run_config = dataclasses.replace(config, epochs=epochs, learning_rate=rate)
        model = peers.build_graph2mat_model(processor, run_config)
        training = peers.train_graph2mat(model, train_batches, run_config)
        val_mae = sum(peers.label_errors(peers.predict_labels(model, b), peers.reference_labels(b),
                                         len(b.point_labels))["mae_meV"] for b in val_batches) / len(val_batches)
        runs.append({"learning_rate": rate, "validation_mae_meV": val_mae, "final_loss_eV2": training.losses[-1],
                     "seconds_per_epoch": training.seconds_per_epoch, "model": model, "config": run_config})
    best = min(runs, key=lambda run: run["validation_mae_meV"])
    return best, [{k: v for k, v in run.items() if k not in ("model", "config")} for run in runs]


def _timed(predict) -> dict:
    """Seconds and peak resident memory (GB) of one call, after a warm-up call."""
    from hforge_nb.large_scale import PeakMemory

    predict()
    with PeakMemory() as memory:
        start = time.perf_counter()
        predict()
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_GB": memory.peak_GB}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--g2m-epochs", type=int, default=None,
                        help="graph2mat's epochs (default --epochs); its epochs are cheaper, so more of them "
                             "compare the two at the same training time")
    parser.add_argument("--g2m-learning-rates", type=float, nargs="+", default=[1e-3, 1e-2])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    import torch

    from hforge_nb import dataset, peers
    from hforge_nb._atomic import write_json
    from hforge_nb.evaluation import aligned_values

    torch.set_num_threads(args.threads)
    samples = dataset.read_samples(DATA, "train")
    split, _ = dataset.distinct_split(samples)
    samples.update(dataset.read_samples(DATA, "holdout"))
    train_set, val_set = [samples[n] for n in split.train], [samples[n] for n in split.validation]
    scored = list(split.test) + HELD_OUT
    processor, means = peers.graph2mat_processor(train_set[0]), peers.mean_on_site_blocks(train_set)
    with tempfile.TemporaryDirectory() as folder:
        ours, ours_training = _ours(train_set, val_set, args.epochs, args.seed, args.threads, Path(folder))
    g2m_epochs = args.g2m_epochs or args.epochs
    best, g2m_runs = _graph2mat(train_set, val_set, processor, means, ours.parameter_count(), g2m_epochs,
                                args.g2m_learning_rates, args.seed, args.threads)
    g2m = best["model"]

    results = {"ours": {"parameters": ours.parameter_count(), **ours_training, "samples": {}},
               "graph2mat": {"parameters": peers.parameter_count(g2m), "config": dataclasses.asdict(best["config"]),
                             "runs": g2m_runs, "samples": {}}}
    for name in scored:
        record = samples[name]
        batch = peers.graph2mat_data(record, processor, means)
        ours_h = aligned_values(ours.predict(record), record)[0]
        results["ours"]["samples"][name] = peers.score_h(record, ours_h, batch, processor, means)
        labels = peers.reference_labels(batch)
        results["graph2mat"]["samples"][name] = peers.label_errors(peers.predict_labels(g2m, batch), labels,
                                                                   len(batch.point_labels))
    record = samples[TIMED]
    graph, batch = ours.graph([record]), peers.graph2mat_data(record, processor, means)
    calls = {"ours": (lambda: ours.predict(record), lambda: ours(graph)),
             "graph2mat": (lambda: peers.predict_labels(g2m, peers.graph2mat_data(record, processor, means)),
                           lambda: peers.predict_labels(g2m, batch))}
    for key, (from_record, forward) in calls.items():
        with torch.no_grad():
            whole, network = _timed(from_record), _timed(forward)
        results[key]["inference"] = {"n_atoms": record.n_atoms, "peak_GB": whole["peak_GB"],
                                     "ms_per_atom": 1000 * whole["seconds"] / record.n_atoms,
                                     "network_ms_per_atom": 1000 * network["seconds"] / record.n_atoms}
    results["settings"] = {"epochs": args.epochs, "graph2mat_epochs": g2m_epochs, "seed": args.seed, "threads": args.threads,
                           "train": list(split.train), "validation": list(split.validation), "scored": scored,
                           "timed": TIMED, "machine": machine(), **provenance(), "torch": torch.__version__}
    write_json(args.output, results)
    print(json.dumps({k: {n: v["mae_meV"] for n, v in results[k]["samples"].items()} for k in ("ours", "graph2mat")},
                     indent=1))


if __name__ == "__main__":
    main()
