"""A learned local potential per atom, and the term it adds to H.

The on-site H blocks of amorphous BN move from atom to atom by a scalar
times the atom's own overlap block: fitted per atom, that shift spreads by
0.3 to 1.4 eV within a disordered 16-atom cell, and what a model leaves of
it is most of what its on-site blocks cost the eigenvalues (``docs/training-studies.md``,
"The atoms' on-site shifts, and twice the channels at 124 cells").  A shift of the
potential that is smooth on the scale of an orbital moves every block the
way the electrostatic term of :mod:`.charges` does,

    H_ij(R) += -(V_i + V_j) / 2 * S_ij(R),

so this term gives each atom a potential V_i (V) of its own, a small
per-species MLP of its invariant node features, and adds it to the site
potentials of the partial charges when the model has them.  Where the
charges' potential is a linear function of the features of every atom
within the Coulomb cutoff, this one is a nonlinear function of the atom's
own features, which already see its neighbourhood through message passing.
It is a scalar times S, so H keeps S's rotation properties.  The last layer
starts at zero: a new model's H is that of the same model without the term.
"""

from __future__ import annotations

import torch


class LocalPotential(torch.nn.Module):
    """Potentials ``[n_atoms]`` (V) of atoms from their invariant node features, one MLP per species.

    Parameters
    ----------
    n_species : int
        Species of the basis (one MLP each).
    scalar_index : torch.Tensor
        ``[n_scalars]`` long, positions of the invariant features in the node features.
    hidden : int
        Width of each MLP's hidden layer (SiLU).

    Examples
    --------
    >>> potential = LocalPotential(2, torch.tensor([0, 1, 2]), hidden=4)
    >>> potential.parameter_count()  # 2 x (3 x 4 + 4 + 4 + 1)
    42
    >>> potential(torch.tensor([0, 1]), torch.randn(2, 3)).tolist()  # a new term is zero
    [0.0, 0.0]
    """

    def __init__(self, n_species: int, scalar_index: torch.Tensor, hidden: int):
        super().__init__()
        if hidden < 1:
            raise ValueError(f"the local potential needs a hidden width of at least 1, got {hidden}")
        self.register_buffer("scalar_index", scalar_index)
        self.mlps = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Linear(len(scalar_index), hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, 1))
            for _ in range(n_species))
        for mlp in self.mlps:  # start from the model without the term
            torch.nn.init.zeros_(mlp[-1].weight)
            torch.nn.init.zeros_(mlp[-1].bias)

    def forward(self, species_index: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """``[n_atoms]`` potentials (V) of atoms of ``species_index`` ``[n_atoms]`` with ``features`` ``[n_atoms, F]``."""
        scalars = features[:, self.scalar_index]  # [n_atoms, n_scalars]
        potentials = scalars.new_zeros(len(scalars))
        for species, mlp in enumerate(self.mlps):
            mine = torch.nonzero(species_index == species)[:, 0]
            if len(mine):
                potentials = potentials.index_copy(0, mine, mlp(scalars[mine])[:, 0])
        return potentials

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
