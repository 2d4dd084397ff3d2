"""Running exported models in MediaPipe Tasks, the runtime Android and iOS apps use: the
proof, in tests and benchmarks, that a phone app reads the file and its metadata as meant."""

import numpy as np

from visionsuite.quiet import native_notices_held


def _create(task_class, options):
    """The task, with the C++ runtime's start-up notices ('Created TensorFlow Lite XNNPACK
    delegate') held back like LiteRT's."""
    with native_notices_held():
        return task_class.create_from_options(options)


def mediapipe_top1(model_path, images: np.ndarray, labels: list[str]) -> np.ndarray:
    """Top-1 class index that MediaPipe's ImageClassifier gives each uint8 RGB image."""
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = vision.ImageClassifierOptions(
        base_options=BaseOptions(model_asset_path=str(model_path)), max_results=1)
    predicted = []
    with _create(vision.ImageClassifier, options) as classifier:
        for image in images:
            frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
            best = classifier.classify(frame).classifications[0].categories[0]
            assert best.category_name == labels[best.index]  # the metadata's labels are used
            predicted.append(best.index)
    return np.array(predicted)


def mediapipe_category_mask(model_path, image: np.ndarray) -> np.ndarray:
    """The category mask (class index per pixel) of MediaPipe's ImageSegmenter for one uint8
    RGB image of the model's input size."""
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = vision.ImageSegmenterOptions(
        base_options=BaseOptions(model_asset_path=str(model_path)),
        output_category_mask=True, output_confidence_masks=False)
    with _create(vision.ImageSegmenter, options) as segmenter:
        frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        mask = segmenter.segment(frame).category_mask.numpy_view()
        return mask.reshape(mask.shape[:2]).copy()


def mediapipe_detections(model_path, image: np.ndarray, max_results: int = 10,
                         score_threshold: float = 0.0) -> list[dict]:
    """MediaPipe ObjectDetector's detections for one uint8 RGB image of the model's input
    size: [{'box': [x1, y1, x2, y2] pixels, 'class', 'score'}], best first."""
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = vision.ObjectDetectorOptions(
        base_options=BaseOptions(model_asset_path=str(model_path)), max_results=max_results,
        score_threshold=score_threshold)
    with _create(vision.ObjectDetector, options) as detector:
        frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        found = detector.detect(frame).detections
    return [{"box": [d.bounding_box.origin_x, d.bounding_box.origin_y,
                     d.bounding_box.origin_x + d.bounding_box.width,
                     d.bounding_box.origin_y + d.bounding_box.height],
             "class": d.categories[0].category_name, "score": d.categories[0].score}
            for d in found]


def mediapipe_embeddings(model_path, images: np.ndarray) -> np.ndarray:
    """MediaPipe ImageEmbedder's float embedding of each uint8 RGB image of the model's input
    size, (N, D)."""
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = vision.ImageEmbedderOptions(
        base_options=BaseOptions(model_asset_path=str(model_path)), l2_normalize=False,
        quantize=False)
    vectors = []
    with _create(vision.ImageEmbedder, options) as embedder:
        for image in images:
            frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
            vectors.append(np.asarray(embedder.embed(frame).embeddings[0].embedding,
                                      np.float32))
    return np.stack(vectors)
