"""One pruning step: importance → shape plan → surgery, with a report of what changed."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from taskdistill.prune.importance import compute_importance, tokenize_calibration
from taskdistill.prune.params import check_supported, count_parameters
from taskdistill.prune.shape import TargetShape, check_keep_fraction, plan_shape
from taskdistill.prune.surgery import prune_model


@dataclass
class PruneReport:
    keep_fraction: float
    axes: str
    before: dict
    after: dict
    params_before: int
    params_after: int
    non_embedding_before: int
    non_embedding_after: int
    reference_params: int
    reference_non_embedding: int | None

    @property
    def fraction_total(self) -> float:
        """Achieved share of the reference (teacher) total parameters."""
        return self.params_after / self.reference_params

    @property
    def fraction_non_embedding(self) -> float | None:
        """Achieved share of the reference non-embedding parameters (None if the reference is a bare total)."""
        return self.non_embedding_after / self.reference_non_embedding if self.reference_non_embedding else None

    def as_dict(self) -> dict:
        return asdict(self) | {"fraction_total": self.fraction_total,
                               "fraction_non_embedding": self.fraction_non_embedding}


def prune(model, tokenizer, keep_fraction: float, calib_texts, axes: str = "width",
          reference_params: int | tuple[int, int] | None = None, depth_share: float = 0.5,
          layer_loss: bool = False, layer_metric: str = "cosine", max_length: int = 128,
          batch_size: int = 8):
    """Prune ``model`` to ``keep_fraction`` × reference parameters; returns ``(model, PruneReport)``.

    ``reference_params`` is the original teacher's total count or ``(total, non_embedding)``;
    default: this model. ``layer_metric="loss"`` ranks layers by loss increase (needs layer_loss).
    """
    check_supported(model.config)
    check_keep_fraction(keep_fraction)
    calib_texts = list(calib_texts)
    tokenize_calibration(tokenizer, calib_texts, max_length, batch_size)  # bad calibration fails early
    total, non_embedding = count_parameters(model)
    if reference_params is None:
        reference = (total, non_embedding)
    elif isinstance(reference_params, int):
        reference = (reference_params, None)
    else:
        reference = tuple(reference_params)
    target = plan_shape(model.config, keep_fraction, axes, depth_share, reference_params=reference[0])
    before = TargetShape.of(model.config)
    if target == before:
        pruned = model
    else:
        importance = compute_importance(model, tokenizer, calib_texts, max_length=max_length,
                                        batch_size=batch_size, layer_loss=layer_loss or layer_metric == "loss")
        pruned = prune_model(model, importance, target, layer_metric=layer_metric)
    after_total, after_non_embedding = count_parameters(pruned)
    report = PruneReport(keep_fraction, axes, before.as_dict(), target.as_dict(), total, after_total,
                         non_embedding, after_non_embedding, reference[0], reference[1])
    return pruned, report
