"""Reading real SIESTA calculations: eigenvalues, formats, spin, hermiticity, bad input."""

import shutil

import numpy as np
import pytest

from hforge_nb import io
from hforge_nb.basis import Basis, SpeciesBasis, OrbitalShell
from hforge_nb.convert import record_from_sisl, record_to_sisl
from hforge_nb.errors import BasisMismatchError, CorruptFileError, MissingBasisError
from hforge_nb.record import records_equal
from hforge_nb.spin import SpinKind
from hforge_nb.tour import find_siesta_calculation, siesta_eigenvalues

from conftest import SIESTA_CASES


@pytest.mark.parametrize("name", ["Si_pdos_k", "graphene_electrode", "H2_hessian"])
def test_eigenvalues_match_siesta_eig(siesta_dir, siesta_record, name):
    calc = find_siesta_calculation(name, siesta_dir)
    if calc.eig is None:
        pytest.skip(f"{name} ships no .EIG/.KP to compare with; its .HSX is checked against its .TSHS instead")
    reference, computed = siesta_eigenvalues(siesta_record(name), calc)
    n = reference.shape[-1]
    assert np.abs(reference - computed[..., :n]).max() < 1e-3


@pytest.mark.parametrize("name", SIESTA_CASES)
def test_record_eigenvalues_match_sisl(siesta_record, name):
    record = siesta_record(name)
    k = np.array([0.13, -0.27, 0.05])
    sisl_values = record_to_sisl(record).eigh(k)
    assert np.abs(record.eigenvalues(k)[0, 0] - sisl_values).max() < 1e-9


def test_hsx_and_tshs_give_the_same_record(siesta_dir):
    folder = siesta_dir / "graphene_electrode"
    from_hsx, from_tshs = io.read_siesta(folder / "electrode.HSX"), io.read_siesta(folder / "electrode.TSHS")
    assert records_equal(from_hsx, from_tshs, atol=1e-12)
    assert from_hsx.fermi_level == from_tshs.fermi_level


def test_spin_orbit_record_keeps_its_kind_and_round_trips(siesta_record):
    record = siesta_record("Bi_hexagonal_soc")
    assert record.spin is SpinKind.SPINORBIT and record.h_values.shape[1] == 8
    hamiltonian = record_to_sisl(record)
    assert hamiltonian.spin.is_spinorbit
    assert records_equal(record, record_from_sisl(hamiltonian, basis=record.basis))  # bit-exact


@pytest.mark.parametrize("name", SIESTA_CASES)
def test_sisl_round_trip_is_bit_exact(siesta_record, name):
    record = siesta_record(name)
    again = record_from_sisl(record_to_sisl(record), basis=record.basis)
    assert records_equal(record, again, atol=0.0)


@pytest.mark.parametrize("name", SIESTA_CASES)
def test_records_are_hermitian(siesta_record, name):
    h_err, s_err = siesta_record(name).hermiticity_error()
    assert h_err <= 1e-10 and s_err <= 1e-10


def test_symmetrization_correction_is_recorded_and_small(siesta_dir, siesta_record):
    raw = io.read_siesta(siesta_dir / "Si_pdos_k" / "Si_pdos.fdf", symmetrize=False)
    correction = siesta_record("Si_pdos_k").provenance.settings["hermiticity_correction_eV"]
    assert max(raw.hermiticity_error()) == correction
    assert 0 < correction < 1e-6


@pytest.mark.parametrize("suffix", [".TSHS", ".nc"])
@pytest.mark.parametrize("name", SIESTA_CASES)
def test_file_round_trip(tmp_path, siesta_record, name, suffix):
    record = siesta_record(name)
    writer = io.write_tshs if suffix == ".TSHS" else io.write_netcdf
    path = writer(record, tmp_path / f"out{suffix}")
    again = io.read_matrix_file(path, record.basis, species=record.species)
    assert again.spin is record.spin
    # files store Ry and Bohr: exact up to the unit conversion's float64 round-off
    assert records_equal(record, again, atol=1e-12)


def test_npz_round_trip_is_bit_exact(tmp_path, siesta_record):
    record = siesta_record("Bi_hexagonal_soc")
    again = io.read_record(io.write_record(record, tmp_path / "bi.npz"))
    assert records_equal(record, again) and again.provenance == record.provenance
    assert again.fermi_level == record.fermi_level


# ------------------------------------------------------------------ bad input
def test_truncated_hsx_is_named(tmp_path, siesta_dir):
    data = (siesta_dir / "Si_pdos_k" / "Si_pdos.HSX").read_bytes()
    for name in ("Si.ion.xml",):
        shutil.copy(siesta_dir / "Si_pdos_k" / name, tmp_path / name)
    (tmp_path / "Si_pdos.HSX").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="Si_pdos.HSX is truncated"):
        io.read_siesta(tmp_path / "Si_pdos.HSX")


def test_garbage_file_is_refused(tmp_path):
    path = tmp_path / "junk.HSX"
    path.write_bytes(b"\xff" * 64)
    with pytest.raises(CorruptFileError, match="junk.HSX"):
        io.read_siesta(path)


def test_element_without_basis_is_named(tmp_path, siesta_dir):
    shutil.copy(siesta_dir / "Si_pdos_k" / "Si_pdos.HSX", tmp_path)
    with pytest.raises(MissingBasisError, match=r"\['Si'\].*Si.ion.xml"):
        io.read_siesta(tmp_path / "Si_pdos.HSX")


def test_basis_with_wrong_orbital_count_is_refused(siesta_dir):
    single_zeta = Basis((SpeciesBasis("Si", 14, (OrbitalShell(3, 0, radius=2.8), OrbitalShell(3, 1, radius=3.6))),))
    with pytest.raises(BasisMismatchError, match="'Si' 4 orbitals per atom, but the matrix has 9"):
        io.read_siesta(siesta_dir / "Si_pdos_k" / "Si_pdos.HSX", basis=single_zeta)


def test_basis_with_wrong_angular_momenta_is_refused(siesta_dir):
    shells = (OrbitalShell(3, 0, radius=2.8), OrbitalShell(3, 0, zeta=2, radius=2.8),
              OrbitalShell(3, 0, zeta=3, radius=2.8), OrbitalShell(3, 0, zeta=4, radius=2.8),
              OrbitalShell(3, 2, radius=3.6))
    with pytest.raises(BasisMismatchError, match="l="):
        io.read_siesta(siesta_dir / "Si_pdos_k" / "Si_pdos.HSX", basis=Basis((SpeciesBasis("Si", 14, shells),)))


def test_tshs_without_elements_asks_for_species(tmp_path, siesta_record):
    record = siesta_record("H2_hessian")
    path = io.write_tshs(record, tmp_path / "h2.TSHS")
    with pytest.raises(MissingBasisError, match="stores no chemical elements"):
        io.read_matrix_file(path, record.basis)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.HSX"):
        io.read_siesta(tmp_path / "nothing.HSX")
