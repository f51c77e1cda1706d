"""graph2mat, a peer project, on our data: its MACE-based matrix model, trained and scored beside ours.

graph2mat (https://github.com/BIG-MAP/graph2mat) learns one orbital matrix
from a MACE network with its own e3nn block readouts (``MatrixMACE`` with
``E3nnGraph2Mat``).  This module turns our records into its data
(``OrbitalConfiguration`` through sisl), builds its model at a parameter
budget, trains it on H with a plain loop (Adam, the MSE of its node and
edge labels), and scores any prediction, ours included, on its label
layout: every value of the blocks of atom pairs whose orbitals overlap, in
eV.  graph2mat is used for comparisons only, and imported lazily (extra
``bench``).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ._compat import import_mace_modules, import_o3
from .convert import record_to_sisl
from .evaluation import _mae_rmse, aligned_values
from .graph import block_list, build_pair_graph
from .record import HamiltonianRecord


@dataclass(frozen=True)
class Graph2MatConfig:
    """Size and training of graph2mat's ``MatrixMACE`` (graph2mat's defaults unless noted).

    Attributes
    ----------
    channels : int
        Channels per irrep of MACE's hidden features (l = 0, 1, 2).
    edge_channels : int
        Channels per irrep of the edge messages of the block readouts.
    max_ell, num_interactions, correlation, num_bessel, num_polynomial_cutoff : int
        MACE's; MACE's cutoff is graph2mat's, twice the longest orbital.
    avg_num_neighbors : float
        Normalization of MACE's message sums.
    epochs : int
    learning_rate : float
        Adam, with AMSGrad as graph2mat's trainer uses.
    seed, threads : int
    """

    channels: int = 8
    edge_channels: int = 4
    max_ell: int = 3
    num_interactions: int = 2
    correlation: int = 2
    num_bessel: int = 8
    num_polynomial_cutoff: int = 5
    avg_num_neighbors: float = 50.0
    epochs: int = 10
    learning_rate: float = 1e-3
    seed: int = 0
    threads: int = 1


def _import_graph2mat():
    """graph2mat's modules, with e3nn and MACE imported our way first; a clear error without the extra."""
    import_mace_modules()
    try:
        import graph2mat
        from graph2mat.bindings.e3nn import E3nnEdgeMessageBlock, E3nnSimpleEdgeBlock, E3nnSimpleNodeBlock
        from graph2mat.bindings.torch import TorchBasisMatrixData
        from graph2mat.models import MatrixMACE
    except ImportError as error:
        raise ImportError(f"graph2mat is not installed ({error}); pip install -e '.[bench]'") from error
    return graph2mat, TorchBasisMatrixData, MatrixMACE, (E3nnEdgeMessageBlock, E3nnSimpleNodeBlock,
                                                         E3nnSimpleEdgeBlock)


def mean_on_site_blocks(records: list[HamiltonianRecord]) -> dict[int, np.ndarray]:
    """Mean on-site H block ``[n, n]`` (eV) of every element over ``records``, keyed by atomic number."""
    blocks: dict[int, list] = {}
    for record in records:
        for b in np.flatnonzero(record.on_site):
            number = int(record.atoms.numbers[record.pairs[b, 0]])
            blocks.setdefault(number, []).append(record.block(b)[0][:, :, 0])
    return {number: np.mean(values, axis=0) for number, values in blocks.items()}


def graph2mat_processor(record: HamiltonianRecord):
    """graph2mat's ``MatrixDataProcessor`` for the record's basis (SIESTA's real harmonics)."""
    graph2mat, *_ = _import_graph2mat()
    geometry = record_to_sisl(record).geometry
    table = graph2mat.BasisTableWithEdges([graph2mat.PointBasis.from_sisl_atom(a) for a in geometry.atoms.atom])
    return graph2mat.MatrixDataProcessor(basis_table=table, symmetric_matrix=False, sub_point_matrix=False)


def graph2mat_data(record: HamiltonianRecord, processor, on_site_means: dict[int, np.ndarray],
                   h_values: np.ndarray | None = None):
    """One structure as graph2mat's batch, labelled with H (eV) of ``record`` or ``h_values`` ``[n_values]``.

    The on-site blocks are labelled minus ``on_site_means``
    (:func:`mean_on_site_blocks`), as graph2mat's ``sub_point_matrix``
    subtracts isolated-atom blocks (which it reads from SIESTA's basis
    files only): orbital energies of -17 to +35 eV would otherwise swamp
    its MSE.  Differences between labels are differences of H.
    """
    graph2mat, TorchBasisMatrixData, *_ = _import_graph2mat()
    from torch_geometric.data import Batch

    h = np.array(record.h_values[:, 0] if h_values is None else h_values, dtype=float)
    offsets = record.block_offsets
    for b in np.flatnonzero(record.on_site):
        h[offsets[b]:offsets[b + 1]] -= on_site_means[int(record.atoms.numbers[record.pairs[b, 0]])].ravel()
    complete = _on_overlap_pairs(dataclasses.replace(record, h_values=h[:, None]))
    with warnings.catch_warnings():  # "not a known matrix type key": the generic class is the one we want
        warnings.filterwarnings("ignore", "<class 'sisl.physics.Hamiltonian'> is not a known matrix type")
        configuration = graph2mat.OrbitalConfiguration.from_matrix(record_to_sisl(complete))
    return Batch.from_data_list([TorchBasisMatrixData.from_config(configuration, processor)])


def _on_overlap_pairs(record: HamiltonianRecord) -> HamiltonianRecord:
    """The record on every pair whose orbitals overlap (graph2mat's edges), zero blocks where it has none.

    Stored data sets drop blocks below a tolerance; graph2mat expects a
    block for each of its edges.
    """
    pairs, shifts = block_list(build_pair_graph(record.atoms, record.basis, species=record.species))
    counts = record.basis.orbital_counts(record.species)
    n_values = int((counts[pairs[:, 0]] * counts[pairs[:, 1]]).sum())
    zeros = HamiltonianRecord(atoms=record.atoms, basis=record.basis, species=record.species, pairs=pairs,
                              shifts=shifts, h_values=np.zeros((n_values, 1)), s_values=np.zeros(n_values))
    h, s = aligned_values(record, zeros)
    return dataclasses.replace(zeros, h_values=h[:, None], s_values=s)


def build_graph2mat_model(processor, config: Graph2MatConfig) -> torch.nn.Module:
    """graph2mat's ``MatrixMACE`` as its Lightning trainer builds it, sized by ``config``, weights from ``seed``."""
    _, _, MatrixMACE, (edge_message, node_block, edge_block) = _import_graph2mat()
    o3, modules = import_o3(), import_mace_modules()
    table = processor.basis_table
    irreps = lambda n: o3.Irreps(f"{n}x0e+{n}x1o+{n}x2e")  # noqa: E731
    torch.manual_seed(config.seed)
    with warnings.catch_warnings():  # MACE's constructor copies tensors with torch.tensor: noise
        warnings.simplefilter("ignore", UserWarning)
        mace = _mace(modules, o3, table, config, irreps)
    return MatrixMACE(mace, unique_basis=table, edge_hidden_irreps=irreps(config.edge_channels), symmetric=False,
                      preprocessing_edges=edge_message, node_operation=node_block, edge_operation=edge_block)


def _mace(modules, o3, table, config: Graph2MatConfig, irreps):
    """The MACE network of graph2mat's Lightning trainer (cutoff twice the longest orbital)."""
    return modules.MACE(
        r_max=float(table.maxR()) * 2, num_bessel=config.num_bessel, num_polynomial_cutoff=config.num_polynomial_cutoff,
        max_ell=config.max_ell, interaction_cls=modules.RealAgnosticResidualInteractionBlock,
        interaction_cls_first=modules.RealAgnosticResidualInteractionBlock, num_interactions=config.num_interactions,
        num_elements=len(table.basis), hidden_irreps=irreps(config.channels), MLP_irreps=o3.Irreps("1x0e"),
        atomic_energies=torch.zeros(len(table.basis)), avg_num_neighbors=config.avg_num_neighbors,
        atomic_numbers=torch.arange(len(table.basis)), correlation=config.correlation, gate=None)


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def graph2mat_config_for_budget(processor, budget: int, config: Graph2MatConfig = Graph2MatConfig()) -> Graph2MatConfig:
    """``config`` with the MACE width whose model's parameter count is closest to ``budget``."""
    sizes = {channels: parameter_count(build_graph2mat_model(processor, dataclasses.replace(config, channels=channels)))
             for channels in range(4, 25, 2)}
    return dataclasses.replace(config, channels=min(sizes, key=lambda channels: abs(sizes[channels] - budget)))


def label_loss(prediction: dict, batch) -> torch.Tensor:
    """The MSE of node labels plus that of edge labels (eV^2), as graph2mat's ``block_type_mse``."""
    node = torch.nn.functional.mse_loss(prediction["node_labels"], batch.point_labels)
    edge = torch.nn.functional.mse_loss(prediction["edge_labels"], batch.edge_labels)
    return node + edge


@dataclass(frozen=True)
class Graph2MatTraining:
    """What :func:`train_graph2mat` did: the loss (eV^2) after every epoch and the seconds it took."""

    losses: list
    seconds: float

    @property
    def seconds_per_epoch(self) -> float:
        return self.seconds / max(len(self.losses), 1)


def train_graph2mat(model: torch.nn.Module, batches: list, config: Graph2MatConfig) -> Graph2MatTraining:
    """``config.epochs`` passes over ``batches`` (one structure each) in a seeded random order."""
    torch.set_num_threads(config.threads)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, amsgrad=True)
    order = np.random.default_rng(config.seed)
    losses, start = [], time.perf_counter()
    model.train()
    for _ in range(config.epochs):
        total = 0.0
        for index in order.permutation(len(batches)):
            optimizer.zero_grad()
            loss = label_loss(model(batches[index]), batches[index])
            loss.backward()
            optimizer.step()
            total += loss.item()
        losses.append(total / len(batches))
    return Graph2MatTraining(losses, time.perf_counter() - start)


@torch.no_grad()
def predict_labels(model: torch.nn.Module, batch) -> np.ndarray:
    """graph2mat's prediction of one structure: node then edge labels (eV), ``[n_labels]``."""
    model.eval()
    prediction = model(batch)
    return torch.cat([prediction["node_labels"], prediction["edge_labels"]]).double().numpy()


def reference_labels(batch) -> np.ndarray:
    """A batch's own labels in the layout of :func:`predict_labels`, ``[n_labels]`` eV."""
    return torch.cat([batch.point_labels, batch.edge_labels]).double().numpy()


def label_errors(predicted: np.ndarray, reference: np.ndarray, n_on_site: int) -> dict[str, float]:
    """MAE and RMSE (meV) of labels ``[n_labels]`` (eV): all, the first ``n_on_site`` (on-site blocks), the rest.

    >>> errors = label_errors(np.array([1.0, 0.0, 0.002]), np.array([1.0, 0.0, 0.0]), n_on_site=1)
    >>> round(errors["mae_meV"], 6), errors["on_site_mae_meV"], round(errors["off_site_mae_meV"], 6)
    (0.666667, 0.0, 1.0)
    """
    difference = np.asarray(predicted) - np.asarray(reference)  # eV
    parts = {"": difference, "on_site_": difference[:n_on_site], "off_site_": difference[n_on_site:]}
    errors = {}
    for name, values in parts.items():
        part = _mae_rmse(values, 1000.0)
        errors.update({f"{name}mae_meV": part["mae"], f"{name}rmse_meV": part["rmse"]})
    return errors


def labels_to_values(record: HamiltonianRecord, processor, labels: np.ndarray) -> np.ndarray:
    """graph2mat labels ``[n_labels]`` (eV, on-site blocks not shifted) as H values ``[n_values]`` of ``record``.

    Values of blocks graph2mat has no edge for are zero.  The map comes
    from labelling the record with each value's index.
    """
    index = np.arange(1, record.block_offsets[-1] + 1, dtype=float)
    no_shift = {int(number): np.zeros(1) for number in np.unique(record.atoms.numbers)}
    probe = np.rint(reference_labels(graph2mat_data(record, processor, no_shift, index))).astype(np.int64)
    values = np.zeros(record.block_offsets[-1])
    found = probe > 0
    values[probe[found] - 1] = np.asarray(labels)[found]
    return values


def score_h(record: HamiltonianRecord, h_values: np.ndarray, batch, processor, on_site_means) -> dict[str, float]:
    """:func:`label_errors` of H values ``[n_values]`` (eV, the record's layout) against the record, on graph2mat's labels.

    ``batch`` is the record's own :func:`graph2mat_data`; scoring our
    predictions this way measures them on exactly graph2mat's values.
    """
    predicted = reference_labels(graph2mat_data(record, processor, on_site_means, h_values))
    return label_errors(predicted, reference_labels(batch), len(batch.point_labels))
