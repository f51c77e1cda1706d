"""The energy zero of H: records hold H from their own Fermi level; a model may learn it in the DFT code's zero.

A record's H is referenced to its E_F (``record.fermi_level`` is where
that was in the code's own zero, GPAW's mean electrostatic potential).
E_F is set by the electron count of the whole cell, which local blocks do
not see, so a model trained on E_F-referenced blocks meets a per-cell
offset ``E_F S`` it cannot predict.  :func:`in_code_zero` gives the record
in the code's own zero, ``H + E_F S``, to train on; a model trained so
predicts in that zero, and :class:`ReferenceFermiZero` moves its
prediction for a record into that record's E_F zero (with the record's
DFT E_F) so that it can be scored against the record.  Eigenvalues
measured from each spectrum's own Fermi level do not depend on the zero;
the H MAE does.  A structure without a reference has no DFT E_F:
:class:`ModelZero` (read from notebook 03's metrics by the later
notebooks) moves such predictions by the mean E_F of the training cells
instead, an estimate of where E_F lies.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from .record import HamiltonianRecord
from .spin import SpinKind

#: ``"fermi"``: H as records hold it (E_F = 0); ``"code"``: H in the DFT code's own zero (H + E_F S).
ENERGY_ZEROS = ("fermi", "code")


def check_energy_zero(energy_zero: str) -> str:
    """``energy_zero`` if it is one of :data:`ENERGY_ZEROS`, else a ``ValueError`` naming the choices."""
    if energy_zero not in ENERGY_ZEROS:
        raise ValueError(f"unknown energy zero {energy_zero!r}: use one of {ENERGY_ZEROS}")
    return energy_zero


def _shifted(record: HamiltonianRecord, energy: float) -> HamiltonianRecord:
    """The record with ``energy * S`` (eV) added to every spin-diagonal component of H."""
    if record.spin not in (SpinKind.UNPOLARIZED, SpinKind.POLARIZED):
        raise ValueError(f"moving the energy zero of a {record.spin.value} record is not supported")
    return dataclasses.replace(record, h_values=record.h_values + energy * record.s_values[:, None])


def in_code_zero(record: HamiltonianRecord) -> HamiltonianRecord:
    """The record with H in its DFT code's own zero: ``H + E_F S`` (eV), so every eigenvalue rises by E_F."""
    return _shifted(record, record.fermi_level)


class ReferenceFermiZero:
    """A model that predicts H in the code's zero, scored in each reference record's E_F zero.

    ``predict(record)`` is the model's prediction with ``record.fermi_level
    * S_predicted`` taken from H: the record's DFT E_F, so use it only to
    compare with that record.  ``model`` is the wrapped model.
    """

    def __init__(self, model):
        self.model = model

    def predict(self, record: HamiltonianRecord) -> HamiltonianRecord:
        return _shifted(self.model.predict(record), -record.fermi_level)


def fermi_level_in(record: HamiltonianRecord, energy_zero: str) -> float:
    """Where E_F lies (eV) in the zero of ``record``'s H when that zero is ``energy_zero``.

    0 for ``"fermi"`` (records as read); ``record.fermi_level`` for
    ``"code"`` (the record after :func:`in_code_zero`, which keeps
    ``fermi_level``).
    """
    return record.fermi_level if check_energy_zero(energy_zero) == "code" else 0.0


def for_energy_zero(model, energy_zero: str):
    """``model`` itself for ``"fermi"``; :class:`ReferenceFermiZero` of it for ``"code"``."""
    return ReferenceFermiZero(model) if check_energy_zero(energy_zero) == "code" else model


def mean_fermi_level(records: list[HamiltonianRecord]) -> float:
    """Mean DFT E_F (eV, in the code's own zero) of ``records``: where E_F of a new structure is expected."""
    return float(sum(record.fermi_level for record in records) / len(records))


@dataclass(frozen=True)
class ModelZero:
    """The energy zero notebook 03's models predict H in, as the later notebooks need it.

    Attributes
    ----------
    energy_zero : str
        One of :data:`ENERGY_ZEROS`.
    fermi_estimate : float
        eV; with ``"code"``, the mean DFT E_F of the training cells in the
        code's zero (:func:`mean_fermi_level`), the estimate of E_F for a
        structure without a reference; 0 with ``"fermi"``.
    """

    energy_zero: str = "fermi"
    fermi_estimate: float = 0.0

    @classmethod
    def of_training(cls, training_dir: str | Path) -> "ModelZero":
        """Read from notebook 03's ``metrics.json`` in ``training_dir`` (runs before the parameter: ``"fermi"``)."""
        metrics = json.loads((Path(training_dir) / "metrics.json").read_text())
        energy_zero = check_energy_zero(metrics.get("energy_zero", "fermi"))
        if energy_zero == "fermi":
            return cls()
        if "training_fermi_level_eV" not in metrics:
            raise ValueError(f"{training_dir}/metrics.json: models trained with energy_zero={energy_zero!r} need "
                             "training_fermi_level_eV, which notebook 03 records since it handles the zero in "
                             "the later notebooks; run notebook 03 again")
        return cls(energy_zero, float(metrics["training_fermi_level_eV"]))

    @property
    def shift(self) -> float:
        """eV times S added to a prediction without a reference to put E_F near zero (``-fermi_estimate``)."""
        return -self.fermi_estimate if self.fermi_estimate else 0.0

    def for_references(self, model):
        """``model`` as :func:`for_energy_zero` wraps it: its predictions for a record in that record's E_F zero."""
        return for_energy_zero(model, self.energy_zero)

    def estimated_fermi_zero(self, prediction: HamiltonianRecord) -> HamiltonianRecord:
        """A prediction for a structure without a reference, moved by :attr:`shift` (as it is with ``"fermi"``)."""
        return _shifted(prediction, self.shift) if self.shift else prediction
