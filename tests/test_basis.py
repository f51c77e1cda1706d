import numpy as np
import pytest

from hforge_nb import io
from hforge_nb.basis import Basis, OrbitalShell, SpeciesBasis, dzp_shells, species_from_sisl_atom, species_to_sisl_atom
from hforge_nb.errors import BasisMismatchError, MissingBasisError, UnknownElementError

from conftest import BN_BASIS


def test_dzp_boron_is_13_orbitals_with_irreps_2x0e_2x1o_1x2e():
    boron = BN_BASIS["B"]
    assert boron.n_orbitals == 13
    assert boron.irreps == "2x0e+2x1o+1x2e"
    assert boron.orbital_l.tolist() == [0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2]
    assert boron.orbital_m.tolist() == [0, 0, -1, 0, 1, -1, 0, 1, -2, -1, 0, 1, 2]
    assert [s.label for s in boron.shells] == ["2sZ1", "2sZ2", "2pZ1", "2pZ2", "3dZ1P"]


def test_e3nn_irreps_dimension_matches_orbital_count():
    irreps = BN_BASIS["N"].e3nn_irreps()
    assert irreps.dim == 13
    assert [ir.p for _, ir in irreps] == [1, -1, 1]


def test_irreps_keep_orbital_order_and_merge_only_neighbours():
    shells = (OrbitalShell(1, 0), OrbitalShell(2, 1), OrbitalShell(2, 0))
    assert SpeciesBasis("X", 3, shells).irreps == "1x0e+1x1o+1x0e"


def test_sisl_atom_round_trip_keeps_shells():
    boron = BN_BASIS["B"]
    assert species_from_sisl_atom(species_to_sisl_atom(boron)) == boron


def test_orbitals_out_of_siesta_order_are_rejected():
    import sisl

    orbitals = [sisl.AtomicOrbital(n=2, l=1, m=m, zeta=1, R=2.0) for m in (1, 0, -1)]
    with pytest.raises(BasisMismatchError, match="not one shell in SIESTA order"):
        species_from_sisl_atom(sisl.Atom(5, orbitals=orbitals, tag="B"))


def test_missing_element_is_named():
    with pytest.raises(MissingBasisError, match=r"\['C'\]"):
        BN_BASIS.for_symbols(["B", "C", "N"])


def test_species_indices_follow_the_basis_order_and_name_a_missing_element():
    assert BN_BASIS.species_indices(["N", "B", "B"]).tolist() == [BN_BASIS.symbols.index(s) for s in "NBB"]
    with pytest.raises(MissingBasisError, match=r"\['C'\]"):
        BN_BASIS.species_indices(["B", "C"])


def test_common_orbital_count_is_none_or_named_when_counts_differ():
    mixed = BN_BASIS.merged(Basis((SpeciesBasis("H", 1, (OrbitalShell(1, 0),)),)))
    assert mixed.common_orbital_count(["B", "N", "B"]) == 13
    assert mixed.common_orbital_count(["B", "H"]) is None
    with pytest.raises(ValueError, match=r"one orbital count per atom, got \[1, 13\]"):
        mixed.common_orbital_count(["B", "H"], required=True)


def test_unknown_element_is_refused():
    with pytest.raises(UnknownElementError, match="Z=0"):
        SpeciesBasis("Xx", 0, dzp_shells(2, (1, 1, 1, 1, 1)))


def test_basis_dict_round_trip():
    assert Basis.from_dict(BN_BASIS.to_dict()) == BN_BASIS


def test_ion_xml_gives_radii_and_polarization(siesta_dir):
    hydrogen = io.read_basis(siesta_dir / "H2_hessian" / "H.ion.xml")["H"]
    assert hydrogen.irreps == "2x0e+1x1o"
    assert [s.polarization for s in hydrogen.shells] == [False, False, True]
    assert np.isclose(hydrogen.max_radius, 2.769, atol=1e-3)
    assert io.read_basis(siesta_dir / "Si_pdos_k" / "Si.ion.xml")["Si"].irreps == "1x0e+1x1o+1x2e"


def test_fdf_and_hsx_bases_agree_on_orbitals(siesta_dir):
    from_fdf = io.read_basis(siesta_dir / "Bi_hexagonal_soc" / "Bi_hexagonal.fdf")["Bi"]
    from_hsx = io.read_basis(siesta_dir / "Bi_hexagonal_soc" / "Bi_hexagonal.HSX")["Bi"]
    assert from_fdf.irreps == from_hsx.irreps == "1x0e+1x1o+2x2e"
    assert from_hsx.max_radius == 0.0 and from_fdf.max_radius > 3.0  # .HSX carries no radii
