"""Several models trained at once, each in its own single-threaded process.

On a machine with a few cores, training the equivariant model and the
baseline one after the other leaves cores idle: each :func:`.training.train`
runs on ``config.threads`` threads, and more threads than cores made
training many times slower here.  :func:`train_side_by_side` gives each
model its own process instead.  Every process starts from the model as it
was handed over (written with :func:`.io.write_model` and read back, weights
and fitted normalization exact) and runs :func:`.training.train` on its own
folder, so its checkpoints, log and ``model.pt`` are those of a run on its
own, and an interrupted run resumes the same way.
"""

from __future__ import annotations

from pathlib import Path

from .io import read_model, write_model
from .record import HamiltonianRecord
from .training import MODEL, TrainingConfig, TrainingResult, train
from .worker_pool import spawn_pool

#: The model a process starts from, in each model's folder.
STARTING_MODEL = "starting_model.pt"


def _train_from_file(folder: Path, train_records: list[HamiltonianRecord], val_records: list[HamiltonianRecord],
                     config: TrainingConfig) -> dict:
    """In a worker: train the model of ``folder/STARTING_MODEL``; what :class:`.TrainingResult` holds besides it."""
    result = train(read_model(folder / STARTING_MODEL), train_records, val_records, config, folder, progress=False)
    return {"log": result.log, "best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
            "stopped_early": result.stopped_early, "seconds": result.seconds, "kept_epoch": result.kept_epoch}


def train_side_by_side(models: dict, train_records: list[HamiltonianRecord], val_records: list[HamiltonianRecord],
                       configs: dict[str, TrainingConfig], folder: str | Path,
                       processes: int = 1) -> dict[str, TrainingResult]:
    """Train every model of ``models`` into ``folder/<name>``, up to ``processes`` at a time.

    ``processes = 1`` calls :func:`.training.train` in this process, one
    model after the other, with progress bars.  Otherwise each model trains
    in a process of its own (spawned, so no thread pool is inherited, and ending with this process), and
    its :class:`.TrainingResult` holds the kept weights read back from
    ``folder/<name>/model.pt``.  ``configs[name]`` is each model's training
    configuration.
    """
    folder = Path(folder)
    if processes <= 1:
        return {name: train(model, train_records, val_records, configs[name], folder / name)
                for name, model in models.items()}
    for name, model in models.items():
        write_model(model, folder / name / STARTING_MODEL)
    with spawn_pool(processes) as pool:
        futures = {name: pool.submit(_train_from_file, folder / name, train_records, val_records, configs[name])
                   for name in models}
        outcomes = {name: future.result() for name, future in futures.items()}
    return {name: TrainingResult(read_model(folder / name / MODEL), **outcome) for name, outcome in outcomes.items()}
