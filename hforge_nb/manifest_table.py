"""A data set's per-sample table and totals in Markdown, from its manifest, for ``data/README.md``.

``python -m hforge_nb.manifest_table data/aBN-dzp`` prints them, so the
data README's tables are the manifest's numbers and nothing typed by hand.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .dataset import read_manifest


def _structure(key: str):
    """The cell of a column of the sample's structure statistics ``key``, to two decimals."""
    return lambda s: f"{s['structure'][key]:.2f}"


#: Column headers, each with the function of a manifest sample entry that fills it.
COLUMNS = {
    "sample": lambda s: s["name"],
    "split": lambda s: s["split"],
    "atoms": lambda s: str(s["n_atoms"]),
    "density g/cm³": _structure("density"),
    "Z_B": _structure("coordination_B"),
    "Z_N": _structure("coordination_N"),
    "homopolar": _structure("homopolar_fraction"),
    "sp2": _structure("sp2_fraction"),
    "sp3": _structure("sp3_fraction"),
    "SCF k-points": lambda s: " x ".join(str(n) for n in s["scf_kgrid"]),
    "SCF iter": lambda s: str(s["scf_iterations"]),
    "GPAW s (SCF + Fourier)": lambda s: f"{s['timings_s']['scf']:.0f} + {s['timings_s']['fourier']:.0f}",
    "peak GB": lambda s: f"{s['peak_rss_GB']:.2f}",
    "off-grid eV": lambda s: f"{s['off_grid_error_eV']:.1e}",
    "stored eV (≤ E_F+10)": lambda s: f"{s['storage_error_eV']:.1e}",
    "MB": lambda s: f"{s['file_MB']:.1f}",
}


def sample_rows(manifest: dict) -> list[list[str]]:
    """One row of :data:`COLUMNS` cells per converged sample of ``manifest``, in its order."""
    return [[cell(sample) for cell in COLUMNS.values()]
            for sample in manifest["samples"] if sample["status"] == "converged"]


def totals_line(manifest: dict) -> str:
    """The manifest's totals in one sentence: samples, atoms, GPAW seconds, MB, largest check errors."""
    t = manifest["totals"]
    return (f"Totals: {t['n_converged']} of {t['n_samples']} samples converged, {t['n_atoms']} atoms, "
            f"{t['gpaw_seconds']:.0f} s of GPAW (single-threaded), {t['size_MB']:.1f} MB of records; "
            f"largest off-grid error {t['max_off_grid_error_eV']:.1e} eV; largest storage error "
            f"{t['max_storage_error_eV']:.1e} eV below E_F + 10 eV "
            f"({t['max_storage_error_all_bands_eV']:.1e} eV over all bands).")


def markdown_table(manifest: dict) -> str:
    """The Markdown table of :func:`sample_rows` under :data:`COLUMNS`, then :func:`totals_line`."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in sample_rows(manifest)]
    return "\n".join(lines) + "\n\n" + totals_line(manifest)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a data set folder (with manifest.json)")
    print(markdown_table(read_manifest(parser.parse_args(argv).folder)))


if __name__ == "__main__":
    main()
