"""Orbital bases: shells of numerical atomic orbitals per species.

A SIESTA-style basis is a list of shells (n, l, zeta, polarization, cutoff
radius).  Within a shell the 2l+1 real orbitals follow SIESTA's order
m = -l..l (p: y, z, x; d: xy, yz, z^2, xz, x^2-y^2).  A species' orbitals
map onto e3nn irreps in that same order: DZP B or N (2s, 2x3p, 5d) is
``2x0e+2x1o+1x2e``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from .errors import BasisMismatchError, MissingBasisError, UnknownElementError

#: Letters of the angular momenta l = 0, 1, 2, ... (orbital and channel labels).
L_LETTERS = "spdfgh"


@dataclass(frozen=True)
class OrbitalShell:
    """One radial function with its 2l+1 real angular parts.

    Attributes
    ----------
    n, l : int
        Principal and angular-momentum quantum numbers.
    zeta : int
        Which radial function of this (n, l): 1 for the first, 2 for the split one.
    polarization : bool
        True for polarization orbitals (the d of DZP B and N).
    radius : float
        Cutoff radius in Å beyond which the orbital is zero.
    """

    n: int
    l: int
    zeta: int = 1
    polarization: bool = False
    radius: float = 0.0

    @property
    def n_orbitals(self) -> int:
        """2l+1."""
        return 2 * self.l + 1

    @property
    def irrep(self) -> str:
        """The e3nn irrep, ``'0e'``, ``'1o'``, ``'2e'``... (parity (-1)^l)."""
        return f"{self.l}{'e' if self.l % 2 == 0 else 'o'}"

    @property
    def label(self) -> str:
        """SIESTA-style label, for example ``'2pZ1'`` or ``'3dZ1P'``."""
        return f"{self.n}{L_LETTERS[self.l]}Z{self.zeta}{'P' if self.polarization else ''}"


@dataclass(frozen=True)
class SpeciesBasis:
    """The orbitals of one chemical species, in matrix order.

    Examples
    --------
    >>> b = SpeciesBasis("B", 5, dzp_shells(n=2, radii=(4.35, 2.9, 4.35, 2.9, 4.35)))
    >>> b.n_orbitals, b.irreps
    (13, '2x0e+2x1o+1x2e')
    """

    symbol: str
    atomic_number: int
    shells: tuple[OrbitalShell, ...]
    #: Largest cutoff (Å) of the non-local pseudopotential projectors, 0 if unknown.
    projector_radius: float = 0.0

    def __post_init__(self) -> None:
        if not 1 <= self.atomic_number <= 118:
            raise UnknownElementError(f"species {self.symbol!r}: Z={self.atomic_number} is not an element")
        object.__setattr__(self, "shells", tuple(self.shells))

    @property
    def n_orbitals(self) -> int:
        """Number of orbitals per atom (13 for DZP B or N)."""
        return sum(s.n_orbitals for s in self.shells)

    @property
    def max_radius(self) -> float:
        """Largest orbital cutoff radius (Å)."""
        return max((s.radius for s in self.shells), default=0.0)

    @property
    def orbital_l(self) -> np.ndarray:
        """``[n_orbitals]`` angular momentum of every orbital."""
        return np.concatenate([np.full(s.n_orbitals, s.l) for s in self.shells]).astype(int)

    @property
    def orbital_m(self) -> np.ndarray:
        """``[n_orbitals]`` magnetic number, m = -l..l inside each shell."""
        return np.concatenate([np.arange(-s.l, s.l + 1) for s in self.shells]).astype(int)

    @property
    def orbital_shell(self) -> np.ndarray:
        """``[n_orbitals]`` index of the shell each orbital belongs to."""
        return np.concatenate([np.full(s.n_orbitals, k) for k, s in enumerate(self.shells)]).astype(int)

    @property
    def irreps(self) -> str:
        """e3nn irreps of the orbitals, in order, equal neighbours merged."""
        merged: list[list] = []
        for shell in self.shells:
            if merged and merged[-1][1] == shell.irrep:
                merged[-1][0] += 1
            else:
                merged.append([1, shell.irrep])
        return "+".join(f"{mul}x{ir}" for mul, ir in merged)

    def e3nn_irreps(self):
        """The same as :attr:`irreps`, as an ``e3nn.o3.Irreps``."""
        from ._compat import import_o3

        return import_o3().Irreps(self.irreps)


def dzp_shells(n: int, radii: Sequence[float]) -> tuple[OrbitalShell, ...]:
    """The five shells of a SIESTA DZP basis for a first-row element.

    ``radii`` are the cutoffs (Å) of s Z1, s Z2, p Z1, p Z2 and d (P).
    """
    rs1, rs2, rp1, rp2, rd = radii
    return (
        OrbitalShell(n, 0, 1, False, rs1),
        OrbitalShell(n, 0, 2, False, rs2),
        OrbitalShell(n, 1, 1, False, rp1),
        OrbitalShell(n, 1, 2, False, rp2),
        OrbitalShell(n + 1, 2, 1, True, rd),
    )


@dataclass(frozen=True)
class Basis:
    """The orbital basis of every species in a data set, by chemical symbol."""

    species: tuple[SpeciesBasis, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "species", tuple(self.species))
        symbols = [s.symbol for s in self.species]
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"basis lists a species twice: {symbols}")

    @property
    def symbols(self) -> tuple[str, ...]:
        """Chemical symbols (species labels) covered."""
        return tuple(s.symbol for s in self.species)

    def __getitem__(self, symbol: str) -> SpeciesBasis:
        for species in self.species:
            if species.symbol == symbol:
                return species
        raise MissingBasisError(f"no orbital basis for element {symbol!r}; the basis covers {list(self.symbols)}")

    def __contains__(self, symbol: str) -> bool:
        return symbol in self.symbols

    def for_symbols(self, symbols: Iterable[str]) -> list[SpeciesBasis]:
        """The species basis of every atom; :class:`MissingBasisError` names any gap."""
        symbols = list(symbols)
        missing = sorted(set(symbols) - set(self.symbols))
        if missing:
            raise MissingBasisError(
                f"no orbital basis for element(s) {missing}; the basis covers {list(self.symbols)}"
            )
        return [self[s] for s in symbols]

    def orbital_counts(self, symbols: Iterable[str]) -> np.ndarray:
        """``[n_atoms]`` number of orbitals of every atom."""
        return np.array([b.n_orbitals for b in self.for_symbols(symbols)], dtype=int)

    def species_indices(self, symbols: Iterable[str]) -> np.ndarray:
        """``[n_atoms]`` position in :attr:`symbols` of every atom's species (the models' one-hot index).

        >>> shells = dzp_shells(n=2, radii=(4.35, 2.9, 4.35, 2.9, 4.35))
        >>> Basis((SpeciesBasis("B", 5, shells), SpeciesBasis("N", 7, shells))).species_indices(["N", "B", "N"])
        array([1, 0, 1])
        """
        symbols = list(symbols)
        self.for_symbols(symbols)  # names any species the basis lacks
        position = {symbol: index for index, symbol in enumerate(self.symbols)}
        return np.array([position[s] for s in symbols], dtype=np.int64)

    def common_orbital_count(self, symbols: Iterable[str], required: bool = False) -> int | None:
        """The number of orbitals every atom of ``symbols`` has; None when they differ (``required``: raise).

        Uniform counts let H and S be stored as dense atom blocks (BSR).

        >>> shells = dzp_shells(n=2, radii=(4.35, 2.9, 4.35, 2.9, 4.35))
        >>> Basis((SpeciesBasis("B", 5, shells), SpeciesBasis("N", 7, shells))).common_orbital_count(["N", "B"])
        13
        """
        counts = np.unique(self.orbital_counts(symbols))
        if len(counts) == 1:
            return int(counts[0])
        if required:
            raise ValueError(f"block-sparse matrices need one orbital count per atom, got {counts.tolist()}")
        return None

    def merged(self, other: "Basis") -> "Basis":
        """This basis plus the species of ``other`` it lacks."""
        extra = [s for s in other.species if s.symbol not in self]
        return Basis(self.species + tuple(extra))

    def to_dict(self) -> dict:
        """Plain-data form (for JSON metadata)."""
        return {"species": [dataclasses.asdict(s) for s in self.species]}

    @classmethod
    def from_dict(cls, content: Mapping) -> "Basis":
        """Inverse of :meth:`to_dict`."""
        species = [
            SpeciesBasis(s["symbol"], int(s["atomic_number"]), tuple(OrbitalShell(**sh) for sh in s["shells"]),
                         float(s.get("projector_radius", 0.0)))
            for s in content["species"]
        ]
        return cls(tuple(species))


def species_from_sisl_atom(atom) -> SpeciesBasis:
    """Read one species from a ``sisl.Atom`` with ``AtomicOrbital`` orbitals.

    Orbitals must come in shells with m = -l..l, as SIESTA writes them;
    anything else raises :class:`BasisMismatchError`.
    """
    orbitals = list(atom.orbitals)
    shells, k = [], 0
    while k < len(orbitals):
        first = orbitals[k]
        l = int(first.l)
        group = orbitals[k : k + 2 * l + 1]
        expected = [(first.n, l, m, first.zeta) for m in range(-l, l + 1)]
        found = [(o.n, o.l, o.m, o.zeta) for o in group]
        if found != expected:
            raise BasisMismatchError(
                f"species {atom.tag}: orbitals {k}..{k + 2 * l} are not one shell in SIESTA order "
                f"(n, l, m, zeta) = {expected}; found {found}"
            )
        radius = float(first.R) if float(first.R) > 0 else 0.0
        shells.append(OrbitalShell(int(first.n), l, int(first.zeta), bool(first.P), radius))
        k += 2 * l + 1
    return SpeciesBasis(str(atom.tag), int(atom.Z), tuple(shells))


def species_to_sisl_atom(species: SpeciesBasis):
    """A ``sisl.Atom`` with one ``AtomicOrbital`` per orbital (radii in Å)."""
    import sisl

    orbitals = [
        sisl.AtomicOrbital(n=sh.n, l=sh.l, m=m, zeta=sh.zeta, P=sh.polarization, R=sh.radius if sh.radius > 0 else -1.0)
        for sh in species.shells
        for m in range(-sh.l, sh.l + 1)
    ]
    return sisl.Atom(species.atomic_number, orbitals=orbitals, tag=species.symbol)
