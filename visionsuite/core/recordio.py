"""MXNet's RecordIO image packs (`train.rec`), read without MXNet: the format InsightFace ships
its face training sets in (CASIA-WebFace as faces_webface_112x112/, MS1M as faces_emore/,
Glint360K), beside `train.idx`, `property` and the .bin verification pairs.

A record is a uint32 magic (0xced7230a), a uint32 whose top 3 bits say whether it is a whole
record or a part of one (a writer splits a record where its payload holds the magic, and the
reader joins the parts with the magic between them) and whose low 29 bits are its length,
then the payload, padded to 4 bytes. An image record's payload is an IRHeader (uint32 flag,
float32 label, uint64 id, uint64 id2), `flag` more float32 labels where flag > 0 (the first
of them then being the label), and the encoded image. InsightFace's packs begin with a header
record (flag > 0) whose first label is the number of the first record after the images: the
records from there on give each identity's range of records, and are not images.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

from visionsuite.errors import VisionsuiteError

MAGIC = 0xCED7230A
LENGTH_BITS = 29
IRHEADER = struct.Struct("<IfQQ")
WHOLE, FIRST, MIDDLE, LAST = range(4)


def records(path: Path) -> Iterator[bytes]:
    """The payloads of a RecordIO file, in order, split records joined."""
    magic = struct.pack("<I", MAGIC)
    with open(path, "rb") as stream:
        parts: list[bytes] = []
        while True:
            head = stream.read(8)
            if not head:
                break
            offset = stream.tell() - len(head)
            word, lrecord = struct.unpack("<II", head) if len(head) == 8 else (None, 0)
            if word != MAGIC:
                raise VisionsuiteError(f"{path}: not a RecordIO file (no record magic at byte "
                                       f"{offset})")
            kind, length = lrecord >> LENGTH_BITS, lrecord & ((1 << LENGTH_BITS) - 1)
            payload = stream.read(length)
            stream.read(-length % 4)  # padding
            if len(payload) != length:
                raise VisionsuiteError(f"{path}: the record at byte {offset} is cut short")
            parts.append(payload)
            if kind in (WHOLE, LAST):
                yield magic.join(parts)
                parts = []


def labelled_images(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """(record number, integer label, encoded image) of every image record of an image pack,
    without its header and identity records (InsightFace's)."""
    end = None
    for number, payload in enumerate(records(path)):
        if end is not None and number >= end:
            return  # InsightFace's identity ranges follow the images
        if len(payload) < IRHEADER.size:
            raise VisionsuiteError(f"{path}: record {number} is too short for an image header")
        flag, label, _, _ = IRHEADER.unpack_from(payload)
        start = IRHEADER.size + 4 * flag
        if flag > 0:
            labels = struct.unpack_from(f"<{flag}f", payload, IRHEADER.size)
            if number == 0:  # InsightFace's header: (first identity record, last + 1)
                end = int(labels[0])
                continue
            label = labels[0]
        yield number, int(label), payload[start:]
