"""Training: normalized block losses, optimiser and schedule, EMA, early stopping, resumable checkpoints.

The loss compares H and S value by value.  Each value belongs to a *class*:
its block group (on-site blocks of a species, or off-site blocks of an
ordered species pair), the angular momenta of its two orbitals (s-s,
s-p, ..., d-d) and the distance shell of its atom pair (``shell_width``
wide).  Errors are divided by the class's spread in the training targets
(never less than a floor) and averaged per class, and the classes count
equally, so that neither the large on-site d-d terms, nor the many small
values of distant pairs, nor the large ones of bonded pairs dominate.

:func:`train` writes into its folder, every write atomic:

- ``checkpoint.pt`` after every epoch (weights, optimiser, schedule, EMA,
  best weights so far, log); a run started again on the same folder resumes
  after the last finished epoch, with identical results, because shuffling
  and augmentation draw from ``seed`` and the epoch number only;
- ``training_log.csv``, one row per epoch;
- ``model.pt``, the weights with the best validation loss, or those of the
  last epoch (``keep_weights``; :func:`.io.read_model`).

With ``torchrun`` (``WORLD_SIZE`` > 1) training runs as PyTorch distributed
data parallel (gloo on CPU, NCCL on GPUs): every process takes its share of
each epoch's structures and only rank 0 writes files.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import io as _io
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ._atomic import atomic_path
from .basis import L_LETTERS, Basis
from .electrostatics import neutralized
from .energy_zero import check_energy_zero, fermi_level_in
from .errors import CorruptFileError
from .model_graph import BlockGroup, ModelGraph, StructureBlocks, stack_targets
from .models.base import HamiltonianModel, block_groups
from .record import HamiltonianRecord
from .rotations import random_rotation, rotate_record, structure_orbital_rotation
from .spectral_loss import SpectralLossConfig, SpectralTarget, rotated_target, spectral_loss, spectral_target

CHECKPOINT = "checkpoint.pt"
LOG = "training_log.csv"
MODEL = "model.pt"
LOG_FIELDS = ("epoch", "train_loss", "val_loss", "val_h_mae_meV", "val_s_mae", "learning_rate", "seconds")


#: What :attr:`TrainingConfig.lr_schedule` and :attr:`TrainingConfig.keep_weights` can name.
LR_SCHEDULES = ("plateau", "cosine")
KEPT_WEIGHTS = ("best", "last")


@dataclass(frozen=True)
class TrainingConfig:
    """How to train.

    Attributes
    ----------
    epochs : int
        Largest number of passes over the training structures.
    learning_rate : float
        Initial AdamW learning rate.
    weight_decay : float
        AdamW's decoupled weight decay: every step scales the trainable
        parameters by 1 - learning rate x ``weight_decay`` (buffers such as
        the fitted scales and priors are not parameters).
    batch_size : int
        Structures per optimiser step.
    lr_schedule : str
        ``"plateau"``: the learning rate is multiplied by ``lr_factor``
        after ``lr_patience`` epochs without a better validation loss.
        ``"cosine"``: it falls from ``learning_rate`` to
        ``learning_rate * lr_final_ratio`` along a half cosine over
        ``epochs`` (so a run cannot be resumed for more epochs).
    lr_factor, lr_patience : float, int
        Of the ``"plateau"`` schedule.
    lr_final_ratio : float
        Of the ``"cosine"`` schedule.
    early_stopping_patience : int
        Stop after this many epochs without a better validation loss.
    keep_weights : str
        Which weights training leaves in the model and ``model.pt``:
        ``"best"``, those of the epoch with the lowest validation loss, or
        ``"last"``, those of the last epoch run.  At the end of a
        ``"cosine"`` schedule the learning rate is small and the weights
        have settled; a validation loss over one or two cells that swings
        from epoch to epoch can pick weights from far earlier.  Either way
        the best epoch is tracked, drives early stopping and is logged.
    ema_decay : float
        Exponential moving average of the weights (0 turns it off); the
        averaged weights are validated and saved.
    s_weight : float
        Weight of the S loss relative to the H loss.
    augment_rotations : bool
        Rotate every training structure by a fresh random rotation (with
        inversion half of the time) every epoch.
    max_grad_norm : float
        Gradient clipping.
    seed : int
        Seeds the weights' initialization order, shuffling and rotations.
    threads : int
        torch threads per process (set explicitly: oversubscription is slow).
    shell_width : float
        Å; off-site loss classes are split into distance shells this wide
        (0, the default: one class for all distances).  H values fall by
        four orders of magnitude from bonded to distant pairs; without
        shells the distant ones hardly count, yet there are hundreds per
        atom and their errors add up in H(k).  With shells they count as
        much as the bonded ones, which then fit less well in a short run.
    h_spread_floor, s_spread_floor : float
        Smallest spread (eV for H, dimensionless for S) a class is divided
        by: errors below these do not matter and are not amplified.
    spectral_weight : float
        Weight (per eV^2) of :func:`.spectral_loss.spectral_loss`, the H
        error seen by the eigenvalues near E_F in the well-conditioned part
        of the basis (0, the default: off).
    spectral_kpoints, spectral_threshold, spectral_window : int, float, float
        Its :class:`.SpectralLossConfig`.
    h_absolute_weight : float
        Weight (per eV^2) of the plain mean squared H error over all values
        (0, the default: off).  It counts errors by their size in eV, as an
        eigenvalue does, where the class loss divides them by the class's
        spread: the on-site and bonded blocks, whose values vary by tenths
        of an eV from cell to cell, weigh more.
    cell_shift_weight : float or None
        None (the default): every H loss scores each structure's whole H
        error.  A number w: each structure's H error is split into c S,
        a constant c (eV) times S fitted by least squares, and the rest;
        the H losses score the rest, and w c^2 (w per eV^2) is added.  A
        record's H is referred to its own E_F, which the electron count of
        the whole cell sets and local blocks do not see; with a small w a
        model need not learn each training cell's E_F.
    atom_shift_weight : float
        Weight (per eV^2) of the spread of the atoms' on-site shifts
        (:func:`atom_shifts`): each atom's on-site H error fitted by c_i
        times its own S block, c_i less its structure's mean, squared and
        averaged over atoms (0, the default: off).  That shift of an atom's
        orbital energies moves the states on it as a whole, so it costs the
        eigenvalues far more than its share of the element-wise losses.
    energy_zero : str
        The zero of the training records' H (:data:`.energy_zero.ENERGY_ZEROS`):
        ``"fermi"`` (the default), each record's own E_F, as records are
        read; ``"code"``, the DFT code's zero (:func:`.energy_zero.in_code_zero`),
        where E_F lies at each record's ``fermi_level``.  The spectral loss
        looks through the states around E_F in that zero.
    """

    epochs: int = 100
    learning_rate: float = 5e-3
    weight_decay: float = 0.0
    batch_size: int = 1
    lr_schedule: str = "plateau"
    lr_factor: float = 0.5
    lr_patience: int = 10
    lr_final_ratio: float = 0.01
    early_stopping_patience: int = 30
    keep_weights: str = "best"
    ema_decay: float = 0.0
    s_weight: float = 1.0
    augment_rotations: bool = False
    max_grad_norm: float = 10.0
    seed: int = 0
    threads: int = 1
    shell_width: float = 0.0
    h_spread_floor: float = 1e-3
    s_spread_floor: float = 1e-5
    spectral_weight: float = 0.0
    spectral_kpoints: int = 1
    spectral_threshold: float = 1e-3
    spectral_window: float = 3.0
    h_absolute_weight: float = 0.0
    cell_shift_weight: float | None = None
    atom_shift_weight: float = 0.0
    energy_zero: str = "fermi"

    def __post_init__(self):
        check_energy_zero(self.energy_zero)
        for name, choices in (("lr_schedule", LR_SCHEDULES), ("keep_weights", KEPT_WEIGHTS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; choose one of {choices}")

    @property
    def spectral(self) -> SpectralLossConfig | None:
        """The spectral loss's settings, None when it is off."""
        if self.spectral_weight <= 0:
            return None
        return SpectralLossConfig(self.spectral_kpoints, self.spectral_threshold, self.spectral_window)


# ------------------------------------------------------------------ loss
def _channel_index(basis: Basis, row: str, col: str, n_l: int) -> torch.Tensor:
    """``[n_row * n_col]`` channel of every value of a block: l_row * n_l + l_col, symmetric in the pair."""
    l_row, l_col = basis[row].orbital_l, basis[col].orbital_l
    low, high = np.minimum.outer(l_row, l_col), np.maximum.outer(l_row, l_col)
    return torch.as_tensor((low * n_l + high).ravel(), dtype=torch.long)


class ValueClasses:
    """Maps every value of a :class:`.ModelGraph` to its loss class (block group x distance shell x orbital channel).

    Parameters
    ----------
    basis : Basis
    shell_width : float
        Å; width of the distance shells of off-site pairs (0: one shell).
    max_distance : float
        Å; pairs at or beyond it share the last shell.
    """

    def __init__(self, basis: Basis, shell_width: float = 0.0, max_distance: float = 10.0):
        self.groups = list(block_groups(basis))
        self.shell_width = shell_width
        self.n_shells = int(np.ceil(max_distance / shell_width)) + 1 if shell_width > 0 else 1
        self.n_l = max(int(basis[s].orbital_l.max()) for s in basis.symbols) + 1
        self.n_classes = len(self.groups) * self.n_shells * self.n_l**2
        self.channels = {key: _channel_index(basis, row, col, self.n_l) for key, (row, col) in block_groups(basis).items()}
        self.block_size = max(basis[s].n_orbitals for s in basis.symbols) ** 2

    def shells(self, graph: ModelGraph) -> torch.Tensor:
        """``[n_blocks]`` distance shell of every block (0 for on-site blocks)."""
        if self.shell_width <= 0:
            return torch.zeros(len(graph.block_pairs), dtype=torch.long)
        distances = torch.linalg.norm(graph.block_vectors(), dim=1)  # [n_blocks] Å
        return torch.ceil(distances / self.shell_width).long().clamp(max=self.n_shells - 1)

    def _group_shell(self, graph: ModelGraph) -> list[tuple[str, BlockGroup, torch.Tensor]]:
        """Every block group with the ``[n, 1]`` (group, shell) index of its blocks."""
        shells = self.shells(graph)
        return [(key, group, (self.groups.index(key) * self.n_shells + shells[group.blocks]).unsqueeze(1))
                for key, group in graph.groups()]

    def name(self, index: int) -> str:
        """The label of class ``index``: block group and orbital channel (``"B-N s-p"``), and shell if any."""
        group_shell, channel = divmod(index, self.n_l**2)
        group, shell = divmod(group_shell, self.n_shells)
        low, high = divmod(channel, self.n_l)
        label = f"{self.groups[group]} {L_LETTERS[low]}-{L_LETTERS[high]}"
        return label + (f", shell {shell}" if self.n_shells > 1 else "")

    def of(self, graph: ModelGraph) -> torch.Tensor:
        """``[n_values]`` class of every value."""
        classes = torch.empty(graph.n_values, dtype=torch.long)
        for key, group, group_shell in self._group_shell(graph):
            classes[group.values] = group_shell * self.n_l**2 + self.channels[key]
        return classes

    def elements(self, graph: ModelGraph) -> torch.Tensor:
        """``[n_values]`` which element of which (block group, shell) every value is (the same in every such block)."""
        elements = torch.empty(graph.n_values, dtype=torch.long)
        for _, group, group_shell in self._group_shell(graph):
            elements[group.values] = group_shell * self.block_size + torch.arange(group.values.shape[1])
        return elements


def _class_rms_or_zero(values: torch.Tensor, classes: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``[n_classes]`` RMS of ``values`` per class (0 for classes without values)."""
    sums = torch.zeros(n_classes, dtype=values.dtype).index_add_(0, classes, values.square())
    counts = torch.bincount(classes, minlength=n_classes).to(values.dtype)
    return (sums / counts.clamp(min=1)).sqrt()


def class_rms(values: torch.Tensor, classes: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``[n_classes]`` RMS of ``values`` per class (1 for classes without values or with only zeros)."""
    rms = _class_rms_or_zero(values, classes, n_classes)
    return torch.where(rms > 0, rms, torch.ones_like(rms))


def _around_element_means(values: torch.Tensor, elements: torch.Tensor) -> torch.Tensor:
    """``[n_values]`` each value minus the mean of its block element (see :meth:`ValueClasses.elements`)."""
    n_elements = int(elements.max()) + 1 if len(elements) else 0
    sums = torch.zeros(n_elements, dtype=values.dtype).index_add_(0, elements, values)
    means = sums / torch.bincount(elements, minlength=n_elements).clamp(min=1).to(values.dtype)
    return values - means[elements]


def class_spread(values: torch.Tensor, classes: torch.Tensor, elements: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``[n_classes]`` RMS per class of ``values`` minus the mean of their block element (see :meth:`ValueClasses.elements`).

    On-site blocks have large means (orbital energies of -17 to +35 eV
    here) that the models' output shifts already carry; what is left to
    learn, and what the loss must weigh, is how values vary around them.
    """
    return class_rms(_around_element_means(values, elements), classes, n_classes)


def classes_without_spread(batches: list["Batch"], n_classes: int, floor: float) -> np.ndarray:
    """Loss classes whose H values are large (RMS above 100 ``floor``, eV) but spread less than ``floor``.

    Their values do not vary over the training cells, as when every atom
    of a symmetric cell is alike, so the loss divides their errors by the
    floor (or by 1 eV if they do not vary at all, :func:`class_rms`) and
    either lets them dominate or ignores them on any other cell.
    """
    classes = torch.cat([b.classes for b in batches])
    h = torch.cat([b.h for b in batches])
    spread = _class_rms_or_zero(_around_element_means(h, torch.cat([b.elements for b in batches])), classes, n_classes)
    flat = (spread < floor) & (_class_rms_or_zero(h, classes, n_classes) > 100 * floor)
    return np.flatnonzero(flat.numpy())


@dataclass
class Batch:
    """A model graph with its targets and loss classes."""

    graph: ModelGraph
    h: torch.Tensor  # [n_values] eV
    s: torch.Tensor  # [n_values]
    classes: torch.Tensor  # [n_values]
    elements: torch.Tensor  # [n_values]
    structures: list[slice] = dataclasses.field(default_factory=list)  # values of each structure
    spectral: list[SpectralTarget] = dataclasses.field(default_factory=list)  # per structure, or none


def make_batch(items: list[StructureBlocks], model: HamiltonianModel, classes: ValueClasses,
               spectral_targets: list[SpectralTarget] | None = None) -> Batch:
    """Graph, targets and classes of some structures, in the model's dtype; ``spectral_targets`` one per item."""
    graph = model.graph_of_blocks(items)
    h, s = stack_targets(items, model.dtype)
    ends = np.cumsum([len(item.h_values) for item in items])
    slices = [slice(int(end - len(item.h_values)), int(end)) for item, end in zip(items, ends)]
    return Batch(graph, h, s, classes.of(graph), classes.elements(graph), slices, list(spectral_targets or []))


class BlockLoss:
    """Mean over loss classes of the mean of ((prediction - target) / spread of the class)^2; H plus ``s_weight`` x S.

    Every class (block group x orbital channel) present in a batch counts
    equally, however many values it holds: the few on-site values weigh as
    much as the many off-site ones.  A class's spread (:func:`class_spread`)
    is the RMS of its training values around their block element's mean,
    so predicting those means scores 1 per matrix.
    """

    def __init__(self, h_scale: torch.Tensor, s_scale: torch.Tensor, s_weight: float, spectral_weight: float = 0.0,
                 h_absolute_weight: float = 0.0, cell_shift_weight: float | None = None,
                 atom_shift_weight: float = 0.0):
        self.h_scale, self.s_scale, self.s_weight = h_scale, s_scale, s_weight
        self.spectral_weight, self.h_absolute_weight = spectral_weight, h_absolute_weight
        self.cell_shift_weight, self.atom_shift_weight = cell_shift_weight, atom_shift_weight

    @classmethod
    def fit(cls, batches: list[Batch], n_classes: int, s_weight: float, h_floor: float = 0.0,
            s_floor: float = 0.0, spectral_weight: float = 0.0, h_absolute_weight: float = 0.0,
            cell_shift_weight: float | None = None, atom_shift_weight: float = 0.0) -> "BlockLoss":
        """Class spreads of H and S over training batches, at least ``h_floor`` (eV) and ``s_floor``.

        ``spectral_weight`` (per eV^2) adds the spectral loss of batches that carry spectral targets;
        ``h_absolute_weight`` (per eV^2) the mean squared H error of every value;
        ``cell_shift_weight`` and ``atom_shift_weight`` are those of :class:`TrainingConfig`.
        """
        classes = torch.cat([b.classes for b in batches])
        elements = torch.cat([b.elements for b in batches])
        h = class_spread(torch.cat([b.h for b in batches]), classes, elements, n_classes)
        s = class_spread(torch.cat([b.s for b in batches]), classes, elements, n_classes)
        return cls(h.clamp(min=h_floor), s.clamp(min=s_floor), s_weight, spectral_weight, h_absolute_weight,
                   cell_shift_weight, atom_shift_weight)

    @staticmethod
    def _class_mean(errors: torch.Tensor, classes: torch.Tensor, n_classes: int) -> torch.Tensor:
        sums = torch.zeros(n_classes, dtype=errors.dtype).index_add(0, classes, _square(errors))
        counts = torch.bincount(classes, minlength=n_classes)
        present = counts > 0
        return (sums[present] / counts[present]).mean()

    def __call__(self, prediction, batch: Batch) -> torch.Tensor:
        n_classes = len(self.h_scale)
        h, loss = prediction.h, 0.0
        if self.cell_shift_weight is not None:
            shifts = cell_shifts(h - batch.h, batch.s, batch.structures)  # [n_structures] eV
            h = h - torch.cat([shift * batch.s[values] for shift, values in zip(shifts, batch.structures)])
            loss = self.cell_shift_weight * shifts.square().mean()
        h_error = (h - batch.h) / self.h_scale.to(batch.h.dtype)[batch.classes]
        s_error = (prediction.s - batch.s) / self.s_scale.to(batch.s.dtype)[batch.classes]
        loss = loss + (self._class_mean(h_error, batch.classes, n_classes)
                       + self.s_weight * self._class_mean(s_error, batch.classes, n_classes))
        if self.spectral_weight > 0 and batch.spectral:
            spectral = torch.stack([spectral_loss(h[values], target)
                                    for values, target in zip(batch.structures, batch.spectral)])
            loss = loss + self.spectral_weight * spectral.mean().to(loss.dtype)
        if self.h_absolute_weight > 0:
            loss = loss + self.h_absolute_weight * _square(h - batch.h).mean()
        if self.atom_shift_weight > 0:
            loss = loss + self.atom_shift_weight * atom_shifts(h - batch.h, batch.s, batch.graph).square().mean()
        return loss


def _square(values: torch.Tensor) -> torch.Tensor:
    """``values`` squared as a product: the same values as ``values.square()``, whose backward pass (a
    power's) was the slower on the half million block values of a 16-atom cell in torch's profiler."""
    return values * values


def cell_shifts(h_error: torch.Tensor, s: torch.Tensor, structures: list[slice]) -> torch.Tensor:
    """``[n_structures]`` c (eV) of each structure: the least-squares fit of its ``h_error`` ``[n_values]`` by c S.

    Adding c S to a structure's H moves every eigenvalue by c and changes
    nothing else.  ``s`` ``[n_values]`` are the reference S values.
    """
    return torch.stack([(h_error[values] * s[values]).sum() / s[values].square().sum() for values in structures])


def atom_shifts(h_error: torch.Tensor, s: torch.Tensor, graph: ModelGraph) -> torch.Tensor:
    """``[n_atoms]`` c_i (eV): each atom's on-site ``h_error`` fitted by c_i times its own S block, less the mean
    of c over the atom's structure.

    ``h_error`` and ``s`` ``[n_values]`` (the reference S) are laid out as
    ``graph``'s values.  The mean is left out because a constant c S over a
    whole structure only moves all its eigenvalues (:func:`cell_shifts`).
    """
    shifts = h_error.new_zeros(graph.n_atoms)
    for group in graph.on_site.values():
        error, overlap = h_error[group.values], s[group.values]  # [n, n_orbitals^2]
        fitted = (error * overlap).sum(dim=1) / overlap.square().sum(dim=1)
        shifts = shifts.index_copy(0, graph.block_pairs[group.blocks, 0], fitted)
    return neutralized(shifts, graph.batch, len(graph.ptr) - 1)  # less the mean over each structure


# ------------------------------------------------------------------ state and files
@dataclass
class TrainingState:
    """Everything a resumed run needs besides the model's and optimiser's own state."""

    epoch: int = 0  # finished epochs
    best_val_loss: float = float("inf")
    best_epoch: int = 0
    epochs_without_improvement: int = 0
    log: list = dataclasses.field(default_factory=list)


def _distributed() -> tuple[int, int]:
    """(rank, world size); initializes the process group under ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (torch.distributed.get_rank(), world) if world > 1 else (0, 1)


def write_checkpoint(path: Path, content: dict) -> None:
    """``torch.save`` atomically: an interrupted write leaves the previous checkpoint intact."""
    with atomic_path(path) as tmp:
        torch.save(content, tmp)


def read_checkpoint(path: Path) -> dict:
    """A checkpoint written by :func:`train`; :class:`CorruptFileError` names a damaged file."""
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load of damaged bytes fails in many ways
        raise CorruptFileError(f"{path} is not a readable training checkpoint ({type(exc).__name__}: {exc}); "
                               f"delete it to start the training again") from exc
    if not isinstance(content, dict) or content.get("format") != "hforge-nb-checkpoint":
        raise CorruptFileError(f"{path} is not an hforge-nb training checkpoint")
    return content


def _write_log(folder: Path, rows: list[dict]) -> None:
    text = _io.StringIO()
    writer = csv.DictWriter(text, fieldnames=LOG_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(folder / LOG) as tmp:
        tmp.write_text(text.getvalue())


# ------------------------------------------------------------------ the loop
@dataclass
class TrainingResult:
    """What :func:`train` leaves: the model with the kept weights, and how it got there.

    ``kept_epoch`` is the epoch whose weights the model holds: ``best_epoch``
    (lowest validation loss) or the last one run (:attr:`TrainingConfig.keep_weights`).
    ``best_epoch`` and ``best_val_loss`` are None without validation structures.
    """

    model: HamiltonianModel
    log: list[dict]
    best_epoch: int | None
    best_val_loss: float | None
    stopped_early: bool
    seconds: float
    kept_epoch: int


@dataclass(frozen=True)
class EpochItem:
    """One training structure of an epoch.

    Attributes
    ----------
    blocks : StructureBlocks
        The structure as trained on this time.
    source : int
        Position of the training item it is, or was rotated from.
    rotation : np.ndarray or None
        ``[3, 3]`` the rotation applied to the training item; None when unrotated.
    """

    blocks: StructureBlocks
    source: int
    rotation: np.ndarray | None = None


def _epoch_items(items: list[StructureBlocks], records: list[HamiltonianRecord], config: TrainingConfig,
                 epoch: int, cutoff: float) -> list[EpochItem]:
    """This epoch's training structures: shuffled, and rotated when augmenting (seeded by epoch)."""
    rng = np.random.default_rng([config.seed, epoch])
    order = rng.permutation(len(items))
    if not config.augment_rotations:
        return [EpochItem(items[k], int(k)) for k in order]
    epoch_items = []
    for k in order:
        rotation = random_rotation(rng, improper=rng.random() < 0.5)
        epoch_items.append(EpochItem(StructureBlocks.of_record(rotate_record(records[k], rotation), cutoff),
                                     int(k), rotation))
    return epoch_items


def _ema_copy(model: HamiltonianModel, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """An exponential moving average of ``model``'s weights.

    Copying the model re-serializes MACE's TorchScript parts, which only
    warns about deprecated TorchScript APIs; those notices are silenced.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit")
        warnings.filterwarnings("ignore", message="The TorchScript type system")
        return torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(decay))


def _evaluate(model: HamiltonianModel, batches: list[Batch], loss: BlockLoss) -> dict[str, float]:
    """Validation loss and MAE of H (meV) and S over ``batches`` (NaN without batches)."""
    if not batches:
        return {"val_loss": float("nan"), "val_h_mae_meV": float("nan"), "val_s_mae": float("nan")}
    model.eval()
    total, h_error, s_error, n_values = 0.0, 0.0, 0.0, 0
    with torch.no_grad():
        for batch in batches:
            prediction = model(batch.graph)
            total += float(loss(prediction, batch))
            h_error += float((prediction.h - batch.h).abs().sum())
            s_error += float((prediction.s - batch.s).abs().sum())
            n_values += batch.h.numel()
    return {"val_loss": total / len(batches), "val_h_mae_meV": 1000 * h_error / max(n_values, 1),
            "val_s_mae": s_error / max(n_values, 1)}


def _scheduler(optimizer: torch.optim.Optimizer, config: TrainingConfig):
    """The learning-rate schedule ``config.lr_schedule`` names (see :class:`TrainingConfig`)."""
    if config.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=config.lr_factor,
                                                          patience=config.lr_patience)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(config.epochs, 1),
                                                      eta_min=config.learning_rate * config.lr_final_ratio)


def check_without_validation(config: TrainingConfig) -> None:
    """Refuse settings that need validation structures when there are none.

    Without them nothing can choose the best weights, halve the learning
    rate on a plateau or stop early: training then runs the ``"cosine"``
    schedule to its end and keeps the last weights.
    """
    if config.lr_schedule != "cosine" or config.keep_weights != "last":
        raise ValueError("training without validation structures needs lr_schedule='cosine' and "
                         f"keep_weights='last' (got {config.lr_schedule!r} and {config.keep_weights!r}): "
                         "nothing else can choose the weights, the learning rate or when to stop")


class Trainer:
    """One training run of one model into one folder (see :func:`train`)."""

    def __init__(self, model: HamiltonianModel, train_records, val_records, config: TrainingConfig, folder: Path):
        if not val_records:
            check_without_validation(config)
        self.model, self.config, self.folder = model, config, Path(folder)
        self.rank, self.world = _distributed()
        self.cutoff = model.config.edge_cutoff
        self.train_records = list(train_records)
        self.train_items = [StructureBlocks.of_record(r, self.cutoff) for r in self.train_records]
        self.classes = ValueClasses(model.basis, config.shell_width, self.cutoff)
        self._fermi_levels = [fermi_level_in(r, config.energy_zero) for r in self.train_records]  # eV, per item
        self._spectral_targets = [self._spectral_target(item, fermi_level) for item, fermi_level
                                  in zip(self.train_items, self._fermi_levels)] if config.spectral else []
        self.val_batches = [self._validation_batch(r) for r in val_records]
        train_batches = [self._training_batch([EpochItem(item, k)], reuse=False)
                         for k, item in enumerate(self.train_items)]
        self._item_batches = train_batches  # per training item
        self.loss = BlockLoss.fit(train_batches, self.classes.n_classes, config.s_weight,
                                  config.h_spread_floor, config.s_spread_floor, config.spectral_weight,
                                  config.h_absolute_weight, config.cell_shift_weight, config.atom_shift_weight)
        self._warn_without_spread(train_batches)
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                           weight_decay=config.weight_decay)
        self.scheduler = _scheduler(self.optimizer, config)
        self.ema = _ema_copy(model, config.ema_decay) if config.ema_decay > 0 else None
        self.state = TrainingState()
        self.best_weights = copy.deepcopy(model.state_dict())
        self.parallel = (torch.nn.parallel.DistributedDataParallel(model) if self.world > 1 else model)

    def _warn_without_spread(self, batches: list[Batch]) -> None:
        """Warn when some H loss classes do not vary over the training cells (:func:`classes_without_spread`)."""
        flat = classes_without_spread(batches, self.classes.n_classes, self.config.h_spread_floor)
        if len(flat) and self.rank == 0:
            names = ", ".join(self.classes.name(int(c)) for c in flat[:4]) + (", ..." if len(flat) > 4 else "")
            warnings.warn(f"the H values of {len(flat)} loss classes ({names}) hardly vary over the training "
                          f"cells (every atom or pair alike, as in a symmetric cell), so the loss cannot weigh their "
                          f"errors (their spread is below h_spread_floor = {self.config.h_spread_floor:g} eV): "
                          "train on more, or less symmetric, cells", stacklevel=3)

    def _training_batch(self, entries: list[EpochItem], reuse: bool = True) -> Batch:
        """The batch of one training step.

        A single unrotated training item reuses the batch built at start
        (its graph, neighbour searches and targets do not change); other
        steps build a new one, with the spectral targets of their training
        items, rotated as the structures are (:meth:`_epoch_spectral_target`).
        """
        if reuse and len(entries) == 1 and entries[0].rotation is None:
            return self._item_batches[entries[0].source]
        targets = [self._epoch_spectral_target(entry) for entry in entries] if self._spectral_targets else None
        return make_batch([entry.blocks for entry in entries], self.model, self.classes, targets)

    def _epoch_spectral_target(self, entry: EpochItem) -> SpectralTarget:
        """The spectral target of an epoch item: its training item's, with frames rotated if it is rotated.

        The frames are rotated (:func:`.spectral_loss.rotated_target`) when
        the rotated structure kept its item's blocks in order, else found anew.
        """
        target, source = self._spectral_targets[entry.source], self.train_items[entry.source]
        if entry.rotation is None:
            return target
        if np.array_equal(entry.blocks.pairs, source.pairs) and np.array_equal(entry.blocks.shifts, source.shifts):
            return rotated_target(target, structure_orbital_rotation(self.model.basis, source.species, entry.rotation))
        return self._spectral_target(entry.blocks, self._fermi_levels[entry.source])

    def _spectral_target(self, item: StructureBlocks, fermi_level: float) -> SpectralTarget:
        """The spectral target of ``item``, whose H has E_F at ``fermi_level`` (eV)."""
        return spectral_target(item, self.model.basis, self.config.spectral, fermi_level)

    def _validation_batch(self, record: HamiltonianRecord) -> Batch:
        """The batch of one validation record, with its spectral target when the spectral loss is on."""
        item = StructureBlocks.of_record(record, self.cutoff)
        if self.config.spectral is None:
            return make_batch([item], self.model, self.classes)
        target = self._spectral_target(item, fermi_level_in(record, self.config.energy_zero))
        return make_batch([item], self.model, self.classes, [target])

    # -------------------------------------------------------------- checkpoints
    def checkpoint(self) -> dict:
        return {"format": "hforge-nb-checkpoint", "version": 1, "kind": self.model.kind,
                "model_config": dataclasses.asdict(self.model.config), "config": dataclasses.asdict(self.config),
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "ema": self.ema.state_dict() if self.ema else {},
                "best_weights": self.best_weights, "state": dataclasses.asdict(self.state)}

    def resume(self, path: Path) -> None:
        """Continue from a checkpoint of the same model and training settings (``epochs`` may grow)."""
        content = read_checkpoint(path)
        extendable = ("early_stopping_patience", "keep_weights") + (("epochs",) if self.config.lr_schedule == "plateau"
                                                                    else ())
        settings = {k: v for k, v in dataclasses.asdict(self.config).items() if k not in extendable}
        stored = {**dataclasses.asdict(TrainingConfig()), **content["config"]}  # fields added since: old behaviour
        same = (content["kind"] == self.model.kind and content["model_config"] == dataclasses.asdict(self.model.config)
                and {k: v for k, v in stored.items() if k not in extendable} == settings)
        if not same:
            raise CorruptFileError(f"{path} belongs to another model or other training settings; "
                                   f"use another output folder or delete it")
        try:
            self.model.load_state_dict(content["model"])
            self.optimizer.load_state_dict(content["optimizer"])
            self.scheduler.load_state_dict(content["scheduler"])
            if self.ema:
                self.ema.load_state_dict(content["ema"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CorruptFileError(f"{path} holds weights of another version of this model ({exc.__class__.__name__}); "
                                   f"use another output folder or delete it") from exc
        self.best_weights = content["best_weights"]
        self.state = TrainingState(**content["state"])

    # -------------------------------------------------------------- epochs
    def train_epoch(self, epoch: int) -> float:
        """One pass over this process's share of the training structures; returns the mean loss."""
        self.model.train()
        items = _epoch_items(self.train_items, self.train_records, self.config, epoch, self.cutoff)
        padding = -len(items) % (self.world * self.config.batch_size)  # equal steps on every process,
        items = (items + items[:padding])[self.rank :: self.world]  # as torch's DistributedSampler pads
        losses = []
        for start in range(0, len(items), self.config.batch_size):
            batch = self._training_batch(items[start : start + self.config.batch_size])
            self.optimizer.zero_grad()
            loss = self.loss(self.parallel(batch.graph), batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
            self.optimizer.step()
            if self.ema:
                self.ema.update_parameters(self.model)
            losses.append(loss.item())
        mean = torch.tensor(float(np.mean(losses)) if losses else float("nan"), dtype=torch.float64)
        if self.world > 1:  # the log shows the loss over all processes
            torch.distributed.all_reduce(mean)
            mean /= self.world
        return float(mean)

    def evaluated_model(self) -> HamiltonianModel:
        """The weights that are validated and saved: the EMA's when on."""
        return self.ema.module if self.ema else self.model

    def end_epoch(self, epoch: int, train_loss: float, seconds: float) -> dict:
        """Validate, step the schedule, track the best weights; returns the log row."""
        metrics = _evaluate(self.evaluated_model(), self.val_batches, self.loss)
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(metrics["val_loss"])
        else:
            self.scheduler.step()
        if self.val_batches:  # without them: no best epoch, no early stopping
            self._track_best(epoch, metrics["val_loss"])
        row = {"epoch": epoch, "train_loss": train_loss, **metrics,
               "learning_rate": self.optimizer.param_groups[0]["lr"], "seconds": round(seconds, 3)}
        self.state.log.append(row)
        self.state.epoch = epoch
        return row

    def _track_best(self, epoch: int, val_loss: float) -> None:
        """Keep the weights of the lowest validation loss so far, and count the epochs since."""
        if val_loss < self.state.best_val_loss:
            self.state.best_val_loss, self.state.best_epoch = val_loss, epoch
            self.state.epochs_without_improvement = 0
            self.best_weights = copy.deepcopy(self.evaluated_model().state_dict())
        else:
            self.state.epochs_without_improvement += 1

    def kept_weights(self) -> tuple[dict, int]:
        """The weights training leaves (:attr:`TrainingConfig.keep_weights`) and their epoch.

        Without validation structures the last weights are kept
        (:func:`check_without_validation`).
        """
        if self.config.keep_weights == "last":
            return self.evaluated_model().state_dict(), self.state.epoch
        return self.best_weights, self.state.best_epoch

    def best(self) -> tuple[int | None, float | None]:
        """The best validation epoch and its loss; (None, None) without validation structures."""
        if not self.val_batches:
            return None, None
        return self.state.best_epoch, self.state.best_val_loss

    def save(self) -> None:
        if self.rank == 0:
            write_checkpoint(self.folder / CHECKPOINT, self.checkpoint())
            _write_log(self.folder, self.state.log)


def train(model: HamiltonianModel, train_records: list[HamiltonianRecord], val_records: list[HamiltonianRecord],
          config: TrainingConfig, folder: str | os.PathLike, progress: bool = True) -> TrainingResult:
    """Train ``model`` in place, resuming from ``folder/checkpoint.pt`` if there is one.

    The model's normalization should already be fitted to the training
    records (:meth:`.HamiltonianModel.fit_statistics`).  Validation on
    ``val_records`` after every epoch drives the learning-rate schedule,
    early stopping and the choice of the saved weights.  ``val_records``
    may be empty when the schedule is ``"cosine"`` and the last weights
    are kept (:func:`check_without_validation`): every cell then trains.

    Returns
    -------
    TrainingResult
        ``model`` holds the kept weights on return (those of the best
        validation loss, or of the last epoch: ``config.keep_weights``);
        they are also in ``folder/model.pt``.
    """
    from tqdm import tqdm  # text bars: notebooks run without ipywidgets

    from .io import write_model

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(model, train_records, val_records, config, folder)
    if (folder / CHECKPOINT).exists():
        trainer.resume(folder / CHECKPOINT)
    started = time.perf_counter()
    bar = tqdm(range(trainer.state.epoch + 1, config.epochs + 1), desc=f"{model.kind}", disable=not progress,
               mininterval=10)
    stopped_early = False
    for epoch in bar:
        if trainer.state.epochs_without_improvement >= config.early_stopping_patience:
            stopped_early = True
            break
        epoch_start = time.perf_counter()
        train_loss = trainer.train_epoch(epoch)
        row = trainer.end_epoch(epoch, train_loss, time.perf_counter() - epoch_start)
        trainer.save()
        bar.set_postfix(loss=f"{train_loss:.3g}", val_H_meV=f"{row['val_h_mae_meV']:.1f}")
    weights, kept_epoch = trainer.kept_weights()
    model.load_state_dict(weights)
    best_epoch, best_val_loss = trainer.best()
    if trainer.rank == 0:
        write_model(model, folder / MODEL, metadata={"training": dataclasses.asdict(config),
                                                     "best_epoch": best_epoch, "best_val_loss": best_val_loss,
                                                     "kept_epoch": kept_epoch, "epochs_run": trainer.state.epoch})
    return TrainingResult(model, trainer.state.log, best_epoch, best_val_loss,
                          stopped_early, time.perf_counter() - started, kept_epoch)
