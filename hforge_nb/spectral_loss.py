"""A loss on H where eigenvalues feel it: in the well-conditioned basis, near the Fermi level.

GPAW's ``dzp`` overlap of dense BN is nearly singular, so an error ΔH in a
direction where S(k) has a small eigenvalue s moves the eigenvalues of
H c = E S c by about ΔH / s.  Element-wise losses do not see this.  Here
the reference S(k) of each training structure gives the orthonormal frame
X = U_kept s_kept^(-1/2) of :func:`.evaluation.canonical_frame`, and
the reference's projected H its eigenvectors V near E_F; with Y = X V
(``[n_orb, n_window]``) the loss is the mean of |Y^H (H_pred(k) - H_ref(k)) Y|^2
over the entries (eV^2).  Its diagonal is the first-order change of the
eigenvalues within ``window`` of E_F.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from .basis import Basis
from .evaluation import canonical_frame, monkhorst_pack
from .model_graph import StructureBlocks
from .record import value_orbitals


@dataclass(frozen=True)
class SpectralLossConfig:
    """Where the spectral loss looks.

    Attributes
    ----------
    kpoints : int
        k-points per periodic direction (Gamma-centred grid; 1: Gamma only).
    threshold : float
        Smallest S(k) eigenvalue kept in the frame (as in the projected
        eigenvalue metric).
    window : float
        eV around E_F (0 in records) of the eigenvectors the loss looks through.
    """

    kpoints: int = 1
    threshold: float = 1e-3
    window: float = 3.0


@dataclass
class SpectralTarget:
    """What the spectral loss of one structure needs (see the module docstring).

    On a Gamma-centred grid of n k-points per direction, e^(2 pi i k.R)
    depends on R only through R mod n: the values of H are summed per such
    class of lattice images, once, and H(k) is a phase-weighted sum of the
    class matrices.
    """

    flat_index: torch.Tensor  # [n_values] long, class * n_orb^2 + row * n_orb + column of every value
    phases: torch.Tensor  # [n_k, n_classes] complex, e^(2 pi i k.R) of each class (k with window states)
    frames: list[torch.Tensor]  # per k, Y [n_orb, n_window] complex
    references: list[torch.Tensor]  # per k, Y^H H_ref(k) Y [n_window, n_window] complex
    n_orbitals: int
    n_classes: int


def spectral_target(item: StructureBlocks, basis: Basis, config: SpectralLossConfig,
                    fermi_level: float = 0.0) -> SpectralTarget:
    """The frames and projected reference H of one structure with reference values.

    ``fermi_level`` (eV) is where E_F lies in the zero of the item's H, the
    centre of the window: 0 for H referred to its own E_F, as records hold
    it; the record's ``fermi_level`` for H in the DFT code's zero
    (:func:`.energy_zero.fermi_level_in`).
    """
    counts = basis.orbital_counts(item.species)
    block, rows, cols = value_orbitals(item.pairs, counts)
    n_orbitals = int(counts.sum())
    kpoints = monkhorst_pack(item, config.kpoints)  # [n_k, 3]
    classes, image_class = np.unique(np.mod(item.shifts, config.kpoints), axis=0, return_inverse=True)
    flat_index = (image_class.reshape(-1)[block] * n_orbitals + rows) * n_orbitals + cols  # [n_values]
    phases = np.exp(2j * np.pi * (classes @ kpoints.T)).T  # [n_k, n_classes]
    kept, frames, references = [], [], []
    for phase in phases:
        h, s = (_dense(values, flat_index, phase, n_orbitals) for values in (item.h_values, item.s_values))
        frame = _window_frame(h, s, config, fermi_level)
        if frame.shape[1] == 0:  # no state within the window at this k-point
            continue
        kept.append(phase)
        frames.append(torch.as_tensor(frame))
        references.append(torch.as_tensor(frame.conj().T @ h @ frame))
    return SpectralTarget(torch.as_tensor(flat_index), torch.as_tensor(np.array(kept).reshape(-1, len(classes))),
                          frames, references, n_orbitals, len(classes))


def rotated_target(target: SpectralTarget, orbital_rotation: np.ndarray) -> SpectralTarget:
    """The target of the structure rotated so that its H(k) becomes D H(k) D^T.

    ``orbital_rotation`` is D ``[n_orb, n_orb]``
    (:func:`.rotations.structure_orbital_rotation`).  The frames become
    D Y, and Y^H H_ref(k) Y does not change.  The blocks must be those of
    the target's structure, in the same order (rotating a record keeps it).
    """
    d = torch.as_tensor(orbital_rotation, dtype=torch.complex128)
    return dataclasses.replace(target, frames=[d @ frame for frame in target.frames])


def spectral_loss(h_values: torch.Tensor, target: SpectralTarget) -> torch.Tensor:
    """Mean over k-points and entries of |Y^H (H_pred(k) - H_ref(k)) Y|^2 (eV^2); ``h_values`` ``[n_values]`` eV."""
    if not target.frames:
        return h_values.sum() * 0.0  # no state within the window anywhere: nothing to compare
    n = target.n_orbitals
    summed = torch.zeros(target.n_classes * n * n, dtype=torch.float64)
    summed = summed.index_add(0, target.flat_index, h_values.to(torch.float64))  # [n_classes * n_orb^2] eV
    h_k = torch.einsum("kc,cij->kij", target.phases, summed.view(-1, n, n).to(torch.complex128))  # [n_k, n, n]
    losses = [(frame.conj().T @ h @ frame - reference).abs().square().mean()
              for h, frame, reference in zip(h_k, target.frames, target.references)]
    return torch.stack(losses).mean()


def _dense(values: np.ndarray, flat_index: np.ndarray, phases: np.ndarray, n: int) -> np.ndarray:
    """``[n, n]`` sum over image classes of ``phases`` ``[n_classes]`` times the values summed at ``flat_index``."""
    summed = np.bincount(flat_index, weights=values, minlength=len(phases) * n * n).reshape(len(phases), n, n)
    return np.tensordot(phases, summed, axes=1)


def _window_frame(h: np.ndarray, s: np.ndarray, config: SpectralLossConfig, fermi_level: float) -> np.ndarray:
    """Y ``[n_orb, n_window]``: reference eigenvectors within ``window`` of ``fermi_level`` (eV), in S's frame."""
    frame = canonical_frame(s, config.threshold)
    energies, states = np.linalg.eigh(frame.conj().T @ h @ frame)
    return frame @ states[:, np.abs(energies - fermi_level) <= config.window]
