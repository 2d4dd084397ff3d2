"""TFLite metadata, written with the flatbuffer schemas that ship in the `mediapipe` package.

Why not tflite-support's metadata writers: tflite-support 0.4.4 (2023, unmaintained) pins
protobuf<4 and cannot be installed beside TensorFlow 2.21; mediapipe's own Python writer is
broken (a module is missing from its wheel). The generated schemas in
`mediapipe/tasks/metadata/` are intact, so this module builds the metadata object with them and
populates it as the TFLite metadata spec says: a `TFLITE_METADATA` buffer referenced from the
model's `metadata` list, plus the associated files (labels) appended as a zip archive.
MediaPipe Tasks on Android, iOS and in Python read exactly that.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
MODEL_IDENTIFIER = b"TFL3"
# Every field written here exists since metadata schema 1.0.0.
MIN_PARSER_VERSION = "1.0.0"


@dataclass
class MetadataSpec:
    name: str
    description: str
    input_name: str
    input_description: str
    output_name: str
    output_description: str
    labels: list[str] = field(default_factory=list)
    mean: float = 0.0
    std: float = 1.0
    channels: int = 3  # 3 RGB, 1 grayscale; others (MRI modalities) have no colour space
    output_range: tuple[float, float] | None = None
    output_is_image: bool = False  # a per-pixel map (segmentation), not a feature vector
    version: str = ""
    author: str = "visionsuite"
    license: str = ""
    labels_file: str = "labels.txt"
    # Four outputs in TFLite's detection post-process order: location, category, score,
    # number of detections (the names MediaPipe's ObjectDetector looks the tensors up by).
    detection: bool = False


def build_metadata(spec: MetadataSpec) -> bytes:
    """The metadata flatbuffer (identifier M001) for an image model with one input and output."""
    import flatbuffers
    from mediapipe.tasks.metadata import metadata_schema_py_generated as meta

    image = meta.TensorMetadataT()
    image.name, image.description = spec.input_name, spec.input_description
    image.content = meta.ContentT()
    image.content.contentPropertiesType = meta.ContentProperties.ImageProperties
    image.content.contentProperties = meta.ImagePropertiesT()
    image.content.contentProperties.colorSpace = {
        1: meta.ColorSpaceType.GRAYSCALE, 3: meta.ColorSpaceType.RGB}.get(
        spec.channels, meta.ColorSpaceType.UNKNOWN)
    normalization = meta.ProcessUnitT()
    normalization.optionsType = meta.ProcessUnitOptions.NormalizationOptions
    normalization.options = meta.NormalizationOptionsT()
    normalization.options.mean, normalization.options.std = [spec.mean], [spec.std]
    image.processUnits = [normalization]
    image.stats = meta.StatsT()
    image.stats.min, image.stats.max = [0.0], [255.0]

    output = meta.TensorMetadataT()
    output.name, output.description = spec.output_name, spec.output_description
    output.content = meta.ContentT()
    if spec.output_is_image:
        # What MediaPipe's ImageSegmenter expects: a grey "image" of class scores per pixel.
        output.content.contentPropertiesType = meta.ContentProperties.ImageProperties
        output.content.contentProperties = meta.ImagePropertiesT()
        output.content.contentProperties.colorSpace = meta.ColorSpaceType.GRAYSCALE
    else:
        output.content.contentPropertiesType = meta.ContentProperties.FeatureProperties
        output.content.contentProperties = meta.FeaturePropertiesT()
    if spec.output_range:
        output.stats = meta.StatsT()
        output.stats.min, output.stats.max = [spec.output_range[0]], [spec.output_range[1]]
    if spec.labels:
        labels = meta.AssociatedFileT()
        labels.name, labels.description = spec.labels_file, "Class names, one per line."
        labels.type = meta.AssociatedFileType.TENSOR_AXIS_LABELS
        output.associatedFiles = [labels]

    subgraph = meta.SubGraphMetadataT()
    subgraph.inputTensorMetadata, subgraph.outputTensorMetadata = [image], [output]
    if spec.detection:
        subgraph.outputTensorMetadata = _detection_outputs(meta, spec)
        group = meta.TensorGroupT()
        group.name, group.tensorNames = "detection_result", ["location", "category", "score"]
        subgraph.outputTensorGroups = [group]
    model = meta.ModelMetadataT()
    model.name, model.description = spec.name, spec.description
    model.version, model.author, model.license = spec.version, spec.author, spec.license
    model.subgraphMetadata = [subgraph]
    model.minParserVersion = MIN_PARSER_VERSION
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), METADATA_IDENTIFIER)
    return bytes(builder.Output())


def _detection_outputs(meta, spec: MetadataSpec) -> list:
    def tensor(name: str, description: str, content_type, properties, per_box: bool = True):
        item = meta.TensorMetadataT()
        item.name, item.description = name, description
        item.content = meta.ContentT()
        item.content.contentPropertiesType, item.content.contentProperties = \
            content_type, properties
        if per_box:  # the content range tflite-support's detector writer sets
            item.content.range = meta.ValueRangeT()
            item.content.range.min = item.content.range.max = 2
        return item

    boxes = meta.BoundingBoxPropertiesT()
    boxes.index = [1, 0, 3, 2]  # stored as (ymin, xmin, ymax, xmax)
    boxes.type = meta.BoundingBoxType.BOUNDARIES
    boxes.coordinateType = meta.CoordinateType.RATIO
    location = tensor("location", "Boxes (ymin, xmin, ymax, xmax), fractions of the image.",
                      meta.ContentProperties.BoundingBoxProperties, boxes)
    category = tensor("category", "Class index of each box, into labels.txt.",
                      meta.ContentProperties.FeatureProperties, meta.FeaturePropertiesT())
    labels = meta.AssociatedFileT()
    labels.name, labels.description = spec.labels_file, "Class names, one per line."
    labels.type = meta.AssociatedFileType.TENSOR_VALUE_LABELS
    category.associatedFiles = [labels]
    score = tensor("score", "Score of each box, 0..1.",
                   meta.ContentProperties.FeatureProperties, meta.FeaturePropertiesT())
    count = tensor("number of detections", "How many of the rows above are detections.",
                   meta.ContentProperties.FeatureProperties, meta.FeaturePropertiesT(),
                   per_box=False)
    return [location, category, score, count]


def populate(model_bytes: bytes, metadata: bytes, files: dict[str, bytes]) -> bytes:
    """A copy of the .tflite `model_bytes` carrying `metadata` and the associated `files`."""
    import flatbuffers
    from mediapipe.tasks.metadata import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    buffer = schema.BufferT()
    buffer.data = list(metadata)
    model.buffers = model.buffers or []
    model.metadata = [m for m in (model.metadata or []) if _name(m) != METADATA_NAME]
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata.append(entry)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), MODEL_IDENTIFIER)
    stream = io.BytesIO(bytes(builder.Output()))
    if files:
        # Associated files travel as a zip archive appended to the flatbuffer: zipfile's append
        # mode on a non-zip stream writes one after the end, with offsets from the file's start.
        stream.seek(0, io.SEEK_END)
        with zipfile.ZipFile(stream, "a", zipfile.ZIP_STORED) as archive:
            for name, data in files.items():
                archive.writestr(name, data)
    return stream.getvalue()


def outputs_in_signature_order(model_bytes: bytes) -> bytes:
    """The converter lists a subgraph's outputs in an order of its own; runtimes that read
    outputs by position (MediaPipe, the TFLite detection APIs) need them in the order the
    exported function returns them (signature names output_0, output_1, ...)."""
    import flatbuffers
    from mediapipe.tasks.metadata import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    if not model.signatureDefs or len(model.subgraphs[0].outputs) < 2:
        return model_bytes
    by_name = {_text(item.name): item.tensorIndex for item in model.signatureDefs[0].outputs}
    names = sorted(by_name, key=lambda n: (len(n), n))  # output_2 before output_10
    model.subgraphs[0].outputs = [by_name[name] for name in names]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), MODEL_IDENTIFIER)
    return bytes(builder.Output())


def _name(entry) -> str:
    return _text(entry.name)


def read_metadata(model_bytes: bytes) -> dict:
    """The metadata of a .tflite as a plain dict, for checks and `visionsuite export` reports."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as meta
    from mediapipe.tasks.metadata import schema_py_generated as schema

    model = schema.Model.GetRootAs(model_bytes, 0)
    for index in range(model.MetadataLength()):
        entry = model.Metadata(index)
        if entry.Name().decode() == METADATA_NAME:
            data = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
            parsed = meta.ModelMetadataT.InitFromPackedBuf(bytearray(data), 0)
            subgraph = parsed.subgraphMetadata[0]

            def tensors(items):
                return [{"name": _text(t.name),
                         "files": [_text(f.name) for f in (t.associatedFiles or [])],
                         "normalization": _normalization(t),
                         "color_space": _color_space(t, meta)} for t in items]

            return {"name": _text(parsed.name), "min_parser_version": _text(parsed.minParserVersion),
                    "inputs": tensors(subgraph.inputTensorMetadata),
                    "outputs": tensors(subgraph.outputTensorMetadata)}
    return {}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def _color_space(tensor, meta) -> str | None:
    """'RGB', 'GRAYSCALE' or 'UNKNOWN' of an image tensor, None of others."""
    properties = getattr(tensor.content, "contentProperties", None)
    if not isinstance(properties, meta.ImagePropertiesT):
        return None
    names = {value: name for name, value in vars(meta.ColorSpaceType).items()
             if not name.startswith("_")}
    return names.get(properties.colorSpace)


def _normalization(tensor) -> dict | None:
    for unit in tensor.processUnits or []:
        if hasattr(unit.options, "mean"):
            return {"mean": list(unit.options.mean), "std": list(unit.options.std)}
    return None
