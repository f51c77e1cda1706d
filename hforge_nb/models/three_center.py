"""Three-center terms of off-site H blocks: the potential of a third atom between the two orbitals.

Besides the integrals of the pair itself (:mod:`.two_center`), a block
H_ij(R) holds <phi_i | V_k | phi_j>, the potential of every atom k near
both orbitals.  That three-center part sets much of the second-neighbour
blocks (a B-B or N-N pair 2-3 Å apart, through the atom bonded to both),
and it depends on where k sits relative to both atoms.  Pair features see
k only through each atom's own summed environment; this term sums over
the common neighbours k of i and j explicitly,

    T_ij = sum_k  [Y(r_ik) (x) Y(r_jk)]_w  f(|r_ik|) f(|r_jk|) g(|r_ij|),

with path weights w from an MLP of the three distances and the invariant
features of i, j and k, f the smooth cutoff at ``three_center_cutoff``
(so an atom entering the range enters smoothly), g that at the network
cutoff (:data:`PAIR_ENVELOPE_ORDER`), and a linear map per species pair to the block's irreps.  The
equivariant model builds it from spherical harmonics
(:class:`EquivariantThreeCenter`); the baseline gets the same information
as numbers, the Cartesian vectors r_ik and r_jk included
(:class:`BaselineThreeCenter`).  S gets no such term: it is two-center up
to PAW's small projector corrections (about 1e-5, see :mod:`.two_center`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .._compat import import_mace_modules, import_o3
from ..basis import Basis
from ..block_irreps import block_irreps

#: Pairs i -> k closer than this (Å) are one atom and an image of the other (k is j): not a third atom.
SAME_ATOM = 1e-4

#: Order of the polynomial envelope that takes the term to zero at the network cutoff.  The pairs that
#: matter are well inside it (second neighbours at 2-3 Å of a 5 Å cutoff), where MACE's usual order 5
#: already damps the term (to 0.35 at 70 % of the cutoff); order 10 keeps 0.75 there and 0.98 at half of
#: it, and still vanishes with two derivatives at the cutoff.
PAIR_ENVELOPE_ORDER = 10


class Triplets(NamedTuple):
    """The common neighbours k of a group of pairs i -> j(R).

    Attributes
    ----------
    pair : torch.Tensor
        ``[n_t]`` long, the pair (row of the group) each triplet belongs to.
    r_ik : torch.Tensor
        ``[n_t, 3]`` Å, from atom i to the image of k.
    features_k : torch.Tensor
        ``[n_t, n_features]`` node features of k.
    """

    pair: torch.Tensor
    r_ik: torch.Tensor
    features_k: torch.Tensor


class Neighbourhood(NamedTuple):
    """Directed neighbour edges of a structure, with their grouping by centre atom (see :func:`neighbourhood`).

    Attributes
    ----------
    neighbour : torch.Tensor
        ``[n_e]`` long, the atom each edge reaches.
    vectors : torch.Tensor
        ``[n_e, 3]`` Å, from the centre to the neighbour's image.
    order : torch.Tensor
        ``[n_e]`` long, the edges sorted by centre (stably).
    starts, counts : torch.Tensor
        ``[n_atoms]`` long, each centre atom's first position in ``order`` and number of edges.
    """

    neighbour: torch.Tensor
    vectors: torch.Tensor
    order: torch.Tensor
    starts: torch.Tensor
    counts: torch.Tensor


def neighbourhood(centre: torch.Tensor, neighbour: torch.Tensor, vectors: torch.Tensor, n_atoms: int) -> Neighbourhood:
    """Edges from atom ``centre`` ``[n_e]`` to atom ``neighbour`` ``[n_e]`` at ``vectors`` ``[n_e, 3]`` Å, grouped
    by centre once, so that every pair's lookup is a slice."""
    counts = torch.bincount(centre, minlength=n_atoms)
    return Neighbourhood(neighbour, vectors, torch.argsort(centre, stable=True), torch.cumsum(counts, 0) - counts, counts)


def common_neighbours(pair_i: torch.Tensor, pair_vectors: torch.Tensor, edges: Neighbourhood,
                      cutoff: float, pair_cutoff: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every atom image k closer than ``cutoff`` (Å) to both atoms of each pair closer than ``pair_cutoff``.

    Parameters
    ----------
    pair_i : torch.Tensor
        ``[n_pairs]`` long, atom i of each pair.
    pair_vectors : torch.Tensor
        ``[n_pairs, 3]`` Å, from i to the image of j.
    edges : Neighbourhood
        At least every neighbour within ``cutoff`` of each atom i.
    cutoff, pair_cutoff : float
        Å.

    Returns
    -------
    pair, k, r_ik
        ``[n_t]`` long row of the pair, ``[n_t]`` long atom k and ``[n_t, 3]`` Å from i to k's image.
        The image of j itself is not a third atom and is left out.
    """
    near = pair_vectors.detach().norm(dim=1) < pair_cutoff
    per_pair = torch.where(near, edges.counts[pair_i], torch.zeros_like(pair_i))  # [n_pairs] candidate k
    pair = torch.repeat_interleave(torch.arange(len(pair_i)), per_pair)
    first = torch.repeat_interleave(torch.cumsum(per_pair, 0) - per_pair, per_pair)
    edge = edges.order[edges.starts[pair_i[pair]] + torch.arange(len(pair)) - first]
    r_ik = edges.vectors[edge]
    d_ik, d_jk = r_ik.detach().norm(dim=1), (r_ik - pair_vectors[pair]).detach().norm(dim=1)
    keep = (d_ik < cutoff) & (d_jk < cutoff) & (d_jk > SAME_ATOM)
    return pair[keep], edges.neighbour[edge][keep], r_ik[keep]


def triplets_of(pair_i: torch.Tensor, pair_vectors: torch.Tensor, edges: Neighbourhood, features: torch.Tensor,
                cutoff: float, pair_cutoff: float) -> Triplets:
    """:class:`Triplets` of pairs (see :func:`common_neighbours`), with k's rows of ``features`` ``[n_atoms, F]``."""
    pair, k, r_ik = common_neighbours(pair_i, pair_vectors, edges, cutoff, pair_cutoff)
    return Triplets(pair, r_ik, features[k])


class _TripletInputs(torch.nn.Module):
    """The invariant inputs of every triplet (radial bases of the three distances, invariant features of i, j
    and k), r_jk, and the product of the three envelopes."""

    def __init__(self, scalar_index: torch.Tensor, cutoff: float, pair_cutoff: float, num_radial: int,
                 num_polynomial_cutoff: int):
        super().__init__()
        radial = import_mace_modules().radial
        self.radial, self.pair_radial = radial.BesselBasis(cutoff, num_radial), radial.BesselBasis(pair_cutoff, num_radial)
        self.envelope = radial.PolynomialCutoff(cutoff, num_polynomial_cutoff)
        self.pair_envelope = radial.PolynomialCutoff(pair_cutoff, PAIR_ENVELOPE_ORDER)
        self.register_buffer("scalar_index", scalar_index)
        self.dim = 3 * num_radial + 3 * len(scalar_index)

    def forward(self, r_ik, features_k, features_i, features_j, r_ij) -> tuple[torch.Tensor, ...]:
        """``[n_t, dim]`` invariants, ``[n_t, 3]`` r_jk (Å) and ``[n_t, 1]`` envelope of triplets.

        Every argument has a row per triplet: r_ik and r_ij ``[n_t, 3]`` Å, the node features of k, i and j.
        """
        r_jk = r_ik - r_ij  # [n_t, 3] Å
        d_ik, d_jk, d_ij = (v.norm(dim=1, keepdim=True) for v in (r_ik, r_jk, r_ij))
        scalars = [f[:, self.scalar_index] for f in (features_i, features_j, features_k)]
        invariants = torch.cat([self.radial(d_ik), self.radial(d_jk), self.pair_radial(d_ij), *scalars], dim=1)
        return invariants, r_jk, self.envelope(d_ik) * self.envelope(d_jk) * self.pair_envelope(d_ij)


class ThreeCenterTerm(torch.nn.Module):
    """What both models' three-center terms share: each triplet's message (:meth:`triplet_messages`),
    summed over the triplets of each pair, then a linear map per species pair (``self.linear``)."""

    def triplet_messages(self, r_ik, features_k, features_i, features_j, r_ij) -> torch.Tensor:
        """``[n_t, dim]`` message of every triplet, envelopes included (arguments: :class:`_TripletInputs`)."""
        raise NotImplementedError

    def forward(self, key: str, triplets: Triplets, features_i, features_j, vectors) -> torch.Tensor:
        """The term ``[n_pairs, dim]`` of the pairs of group ``key`` (``vectors`` ``[n_pairs, 3]`` Å)."""
        return self.forward_groups({key: (triplets, features_i, features_j, vectors)})[key]

    def forward_groups(self, groups: dict[str, tuple]) -> dict[str, torch.Tensor]:
        """:meth:`forward` of several groups, ``{key: (triplets, features_i, features_j, vectors)}``.

        The triplets of all groups go through the network at once (the same
        values as one call per group, with fewer, larger operations).
        """
        per_triplet = [(t.r_ik, t.features_k, f_i[t.pair], f_j[t.pair], vectors[t.pair])
                       for t, f_i, f_j, vectors in groups.values()]
        joined = [torch.cat(parts) for parts in zip(*per_triplet)]
        messages = self.triplet_messages(*joined).split([len(t.pair) for t, *_ in groups.values()])
        terms = {}
        for (key, (triplets, _, _, vectors)), message in zip(groups.items(), messages):
            total = message.new_zeros(len(vectors), message.shape[1]).index_add(0, triplets.pair, message)
            terms[key] = self.linear[key](total)
        return terms


def _off_site_targets(basis: Basis, groups: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Irreps of the off-site block of every species pair ``"A-B"``."""
    return {key: block_irreps(basis[row], basis[col]) for key, (row, col) in groups.items() if "-" in key}


class EquivariantThreeCenter(ThreeCenterTerm):
    """Three-center H irreps ``[n_pairs, dim]`` of a group of pairs from spherical harmonics of r_ik and r_jk.

    Parameters
    ----------
    basis : Basis
    groups : dict
        Block groups (:func:`.base.block_groups`).
    scalar_index : torch.Tensor
        Positions of the invariant node features.
    cutoff, pair_cutoff : float
        Å: the largest |r_ik| and |r_jk|, and the largest |r_ij|.
    lmax : int
        Largest l of the spherical harmonics (2 reaches every L of a d-d block through Y_2 (x) Y_2).
    channels : int
        Copies of every target irrep before the linear map per species pair.
    """

    def __init__(self, basis: Basis, groups: dict, scalar_index: torch.Tensor, cutoff: float, pair_cutoff: float,
                 lmax: int = 2, channels: int = 4, num_radial: int = 8, radial_hidden: int = 32,
                 num_polynomial_cutoff: int = 5):
        super().__init__()
        o3 = import_o3()
        from e3nn.nn import FullyConnectedNet

        targets = _off_site_targets(basis, groups)
        union = o3.Irreps("+".join(targets.values())).sort().irreps.simplify()
        harmonics = o3.Irreps.spherical_harmonics(lmax)
        self.harmonics = o3.SphericalHarmonics(harmonics, normalize=True, normalization="component")
        out = o3.Irreps([(channels, ir) for _, ir in union])
        instructions = [(a, b, c, "uvw", True) for a, (_, ir_a) in enumerate(harmonics)
                        for b, (_, ir_b) in enumerate(harmonics) for c, (_, ir_c) in enumerate(out) if ir_c in ir_a * ir_b]
        self.product = o3.TensorProduct(harmonics, harmonics, out, instructions,
                                        shared_weights=False, internal_weights=False)
        self.inputs = _TripletInputs(scalar_index, cutoff, pair_cutoff, num_radial, num_polynomial_cutoff)
        self.weights = FullyConnectedNet([self.inputs.dim, radial_hidden, radial_hidden, self.product.weight_numel],
                                         torch.nn.functional.silu)
        self.linear = torch.nn.ModuleDict({key: o3.Linear(out, irreps) for key, irreps in targets.items()})
        for linear in self.linear.values():  # start from the model without the term
            torch.nn.init.zeros_(linear.weight)

    def triplet_messages(self, r_ik, features_k, features_i, features_j, r_ij) -> torch.Tensor:
        invariants, r_jk, envelope = self.inputs(r_ik, features_k, features_i, features_j, r_ij)
        return self.product(self.harmonics(r_ik), self.harmonics(r_jk), self.weights(invariants)) * envelope


class BaselineThreeCenter(ThreeCenterTerm):
    """Three-center H block values ``[n_pairs, n_i * n_j]`` of a group of pairs from an MLP of each triplet.

    The inputs are what :class:`EquivariantThreeCenter` reads, as plain
    numbers: the Cartesian r_ik and r_jk (over ``cutoff``), the radial bases
    of the three distances and the invariant features of i, j and k.
    """

    def __init__(self, basis: Basis, groups: dict, scalar_index: torch.Tensor, cutoff: float, pair_cutoff: float,
                 hidden: int, depth: int, num_radial: int = 8, num_polynomial_cutoff: int = 5):
        super().__init__()
        from .baseline import mlp

        self.cutoff = cutoff
        self.inputs = _TripletInputs(scalar_index, cutoff, pair_cutoff, num_radial, num_polynomial_cutoff)
        self.trunk = torch.nn.Sequential(mlp(6 + self.inputs.dim, hidden, depth, hidden), torch.nn.SiLU())
        self.linear = torch.nn.ModuleDict({  # no bias: a pair without a third atom gets no term
            key: torch.nn.Linear(hidden, basis[row].n_orbitals * basis[col].n_orbitals, bias=False)
            for key, (row, col) in groups.items() if "-" in key})
        for linear in self.linear.values():  # start from the model without the term
            torch.nn.init.zeros_(linear.weight)

    def triplet_messages(self, r_ik, features_k, features_i, features_j, r_ij) -> torch.Tensor:
        invariants, r_jk, envelope = self.inputs(r_ik, features_k, features_i, features_j, r_ij)
        return self.trunk(torch.cat([r_ik / self.cutoff, r_jk / self.cutoff, invariants], dim=1)) * envelope
