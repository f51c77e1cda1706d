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
the H MAE does.
"""

from __future__ import annotations

import dataclasses
import json
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


def for_energy_zero(model, energy_zero: str):
    """``model`` itself for ``"fermi"``; :class:`ReferenceFermiZero` of it for ``"code"``."""
    return ReferenceFermiZero(model) if check_energy_zero(energy_zero) == "code" else model


def require_fermi_zero(training_dir: str | Path, notebook: str) -> None:
    """Raise ``ValueError`` if notebook 03's run in ``training_dir`` trained in another zero than ``"fermi"``.

    ``notebook`` names the caller, which compares the models' H with
    E_F-referenced records and has no reference E_F for new structures.
    Runs made before the parameter existed trained in ``"fermi"``.
    """
    metrics = json.loads((Path(training_dir) / "metrics.json").read_text())
    energy_zero = metrics.get("energy_zero", "fermi")
    if energy_zero != "fermi":
        raise ValueError(f"{notebook} needs models trained with energy_zero='fermi'; those in {training_dir} were "
                         f"trained with energy_zero={energy_zero!r}")
