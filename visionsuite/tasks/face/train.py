"""Measuring verification on the held-out identities after each training epoch."""

from __future__ import annotations

import keras

from visionsuite.config import Config


class VerificationCallback(keras.callbacks.Callback):
    """ROC AUC, TAR at FAR 1e-2, rank-1 and EER of the held-out identities, as `val_roc_auc`,
    `val_tar_at_far_0.01`, `val_rank1` and `val_eer` in the epoch logs, and
    `val_selection_tar`, what picks the best checkpoint: the TAR, or 0 where the embedding has
    nearly collapsed (metrics.collapsed).

    Held-out identities are other people, so Keras has no val loss to compute: this embeds the
    val faces itself, with the weights that would be saved (the moving average when EMA is on),
    loaded into an embedder twin of the model."""

    def __init__(self, task, data, config: Config):
        super().__init__()
        self.task, self.data, self.config = task, data, config
        self.twin, self.predictor = None, None

    def on_epoch_end(self, epoch, logs=None):
        from visionsuite.core.models import KerasPredictor
        from visionsuite.core.train import averaged_weights, float32_twin

        if self.twin is None:  # built once: its traced function serves every epoch
            self.twin = float32_twin(self.model)
            self.predictor = KerasPredictor(self.task.inference_model(self.twin, self.config))
        self.twin.set_weights(averaged_weights(self.model))
        outputs = self.predictor.predict(self.data.val.images)
        metrics = self.task.evaluate(outputs, self.data.val, self.data.labels)
        if logs is not None:
            logs.update({"val_roc_auc": metrics["roc_auc"],
                         "val_tar_at_far_0.01": metrics["tar_at_far_0.01"],
                         "val_rank1": metrics["rank1"], "val_eer": metrics["eer"],
                         "val_selection_tar": selection_tar(metrics)})


def selection_tar(metrics: dict) -> float:
    from visionsuite.tasks.face.metrics import collapsed

    return 0.0 if collapsed(metrics) else metrics["tar_at_far_0.01"]
