"""Measuring verification on the held-out identities (or data.val_pairs) after each
training epoch."""

from __future__ import annotations

import keras

from visionsuite.config import Config


# What each epoch logs as val_<key>: a split of people has a rank-1, a pairs file of folds
# (data.val_pairs) LFW's accuracy.
LOGGED = ("roc_auc", "tar_at_far_0.01", "rank1", "cv_accuracy", "eer")


class VerificationCallback(keras.callbacks.Callback):
    """ROC AUC, TAR at FAR 1e-2, rank-1 (or LFW's accuracy) and EER of the held-out
    identities (or data.val_pairs), as `val_roc_auc`, `val_tar_at_far_0.01`, ... (LOGGED) in
    the epoch logs, and `val_selection_tar`, what picks the best checkpoint: the TAR, or 0
    where the embedding has nearly collapsed (metrics.collapsed).

    Held-out identities are other people, so Keras has no val loss to compute: this embeds the
    val faces itself, with the weights that would be saved (the moving average when EMA is on),
    loaded into an embedder twin of the model."""

    def __init__(self, task, data, config: Config):
        super().__init__()
        self.task, self.data, self.config = task, data, config
        self.twin, self.predictor = None, None

    def on_epoch_end(self, epoch, logs=None):
        from visionsuite.core.models import KerasPredictor
        from visionsuite.core.train import averaged_weights, float32_inference_twin

        if self.twin is None:  # built once: its traced function serves every epoch
            self.twin, embedder = float32_inference_twin(
                self.model, lambda twin: self.task.inference_model(twin, self.config))
            self.predictor = KerasPredictor(embedder)
        self.twin.set_weights(averaged_weights(self.model))
        outputs = self.predictor.predict(self.data.val.images)
        metrics = self.task.evaluate(outputs, self.data.val, self.data.labels)
        if logs is not None:
            logs.update({f"val_{key}": metrics[key] for key in LOGGED if key in metrics})
            logs["val_selection_tar"] = selection_tar(metrics)


def selection_tar(metrics: dict) -> float:
    from visionsuite.tasks.face.metrics import collapsed

    return 0.0 if collapsed(metrics) else metrics["tar_at_far_0.01"]
