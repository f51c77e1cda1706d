"""Hamiltonian models: an equivariant MACE + e3nn model and a non-equivariant MLP baseline.

Both share one interface (:class:`.HamiltonianModel`): ``model(graph)``
gives the Hermitian H and S values of a :class:`.ModelGraph`'s blocks,
``model.predict(structure)`` a :class:`.HamiltonianRecord`.  Save and load
them with :func:`hforge_nb.io.write_model` and :func:`hforge_nb.io.read_model`.
"""

from __future__ import annotations

import torch

from ..basis import Basis
from .base import BlockOutput, BlockValues, HamiltonianModel, block_groups, parameter_breakdown, rotated_predictions, rotation_error
from .baseline import BaselineConfig, BaselineModel, baseline_config_for_budget
from .descriptor import DescriptorConfig, MACEDescriptor
from .equivariant import EquivariantConfig, EquivariantModel

#: Model kind -> (class, config class).
MODEL_KINDS = {
    EquivariantModel.kind: (EquivariantModel, EquivariantConfig),
    BaselineModel.kind: (BaselineModel, BaselineConfig),
}


def build_model(kind: str, config, basis: Basis, dtype: torch.dtype = torch.float32) -> HamiltonianModel:
    """A new model of ``kind`` (``"equivariant"`` or ``"baseline"``) with ``config``."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {sorted(MODEL_KINDS)}")
    model_class, config_class = MODEL_KINDS[kind]
    if not isinstance(config, config_class):
        raise TypeError(f"a {kind} model needs a {config_class.__name__}, got {type(config).__name__}")
    return model_class(config, basis, dtype=dtype)


def build_fitted_model(kind: str, config, records: list, dtype: torch.dtype = torch.float32,
                       seed: int = 0) -> HamiltonianModel:
    """A new model whose weights are drawn with ``seed`` and whose normalization is fitted to ``records``.

    The basis is that of the first record.  See :meth:`.HamiltonianModel.fit_statistics`.
    """
    if not records:
        raise ValueError("build_fitted_model needs at least one record to fit the normalization to")
    torch.manual_seed(seed)
    model = build_model(kind, config, records[0].basis, dtype=dtype)
    model.fit_statistics(records)
    return model


def build_matched_models(kinds: list[str], records: list, readout_channels: int = 8, seed: int = 0,
                         **descriptor) -> dict[str, HamiltonianModel]:
    """Fitted models of ``kinds`` on the same budget: the baseline's width matches the equivariant model's parameters.

    ``descriptor`` holds the :class:`.DescriptorConfig` fields both share
    (and ``edge_cutoff``); ``readout_channels`` sizes the equivariant readouts.
    """
    equivariant = build_fitted_model("equivariant", EquivariantConfig(**descriptor, readout_channels=readout_channels),
                                      records, seed=seed)
    configs = {"equivariant": equivariant.config,
               "baseline": baseline_config_for_budget(BaselineConfig(**descriptor), records[0].basis,
                                                      equivariant.parameter_count())}
    return {kind: equivariant if kind == "equivariant" else build_fitted_model(kind, configs[kind], records, seed=seed)
            for kind in kinds}


__all__ = [
    "MODEL_KINDS", "BaselineConfig", "BaselineModel", "BlockOutput", "BlockValues", "DescriptorConfig",
    "EquivariantConfig", "EquivariantModel", "HamiltonianModel", "MACEDescriptor", "baseline_config_for_budget",
    "block_groups", "build_fitted_model", "build_matched_models", "build_model", "parameter_breakdown",
    "rotated_predictions", "rotation_error",
]
