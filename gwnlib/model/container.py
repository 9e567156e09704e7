"""A file of many images' streams: chunks of N images per channel, with an index that lets a
receiver read only the channels it needs (issue 30; the chunk streams are
:func:`gwnlib.model.streams.compress_chunk`'s).

Layout (big-endian): magic ``b"GWNF"``, :data:`VERSION`, the codec's header name (length-prefixed
UTF-8), the channels (count, then one :func:`~gwnlib.model.streams.channel_id` byte each), the
number of images, the number of chunks, then per chunk its image count and, per channel, the
offset and length of its chunk stream in the file; a CRC32 of all that; then the chunk streams.
Each chunk stream keeps its own header and checksums (payload, entropy-model weights, latent, and
the Y0 it was coded given), so a flipped byte, a truncated file, another model's file or a chunk
paired with another chunk's Y0 fails with a ``ValueError`` that names the file, never a silent
wrong decode. The checksums guard against damage and mix-ups, not forgery: an index rewritten
with a valid CRC to point chunk i at chunk j's streams decodes chunk j's images in i's place when
the two chunks' Y0 are equal (then the streams are valid, and the same bytes either way).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gwnlib.files import atomic_write
from gwnlib.model import streams

MAGIC = b"GWNF"
#: 1: the layout of the module docstring.
VERSION = 1


@dataclass(frozen=True)
class Index:
    """What a container holds: the codec's header ``name``, its ``channels`` (keys, in coding
    order), the image ``counts`` of its chunks and, per chunk, ``{key: (offset, length)}``."""

    name: str
    channels: tuple[str, ...]
    counts: tuple[int, ...]
    entries: tuple[dict[str, tuple[int, int]], ...]

    @property
    def images(self) -> int:
        return sum(self.counts)


def _name(codec: nn.Module) -> str:
    return getattr(codec, "header_name", codec.name)


def write(codec: nn.Module, batches: Iterable[torch.Tensor], path: str | Path,
          progress=None) -> Index:  # fmt: skip
    """Code every batch of ``batches`` (each one chunk, e.g. ``x.split(N)``) with
    :func:`~gwnlib.model.streams.compress_chunk` and write them, indexed, to ``path``
    atomically (a failure leaves no half-written file). ``progress``: a tqdm-like wrapper for
    the batches. Returns the index."""
    chunks = []
    for x in progress(batches) if progress is not None else batches:
        chunks.append(streams.compress_chunk(codec, x))
    if not chunks:
        raise ValueError("batches must hold at least one batch of images; got none")
    channels = tuple(chunks[0]["strings"])
    name = _name(codec).encode()
    head = struct.pack(">4sBH", MAGIC, VERSION, len(name)) + name
    head += struct.pack(">B", len(channels)) + bytes(streams.channel_id(k) for k in channels)
    head += struct.pack(">II", sum(c["count"] for c in chunks), len(chunks))
    size = len(head) + len(chunks) * (4 + len(channels) * 12) + 4
    offset, table, entries = size, b"", []
    for chunk in chunks:
        table += struct.pack(">I", chunk["count"])
        entry = {}
        for key in channels:
            length = len(chunk["strings"][key])
            table += struct.pack(">QI", offset, length)
            entry[key] = (offset, length)
            offset += length
        entries.append(entry)
    index_bytes = head + table
    index_bytes += struct.pack(">I", zlib.crc32(index_bytes))

    def body(f):
        f.write(index_bytes)
        for chunk in chunks:
            for key in channels:
                f.write(chunk["strings"][key])

    atomic_write(path, body)
    counts = tuple(c["count"] for c in chunks)
    return Index(_name(codec), channels, counts, tuple(entries))


def read_index(path: str | Path) -> Index:
    """The index of the container at ``path`` (``ValueError`` naming the file if it is not
    one, is truncated or its index is corrupted)."""
    path = Path(path)
    with open(path, "rb") as f:
        data = f.read(1 << 16)
        size = path.stat().st_size

    def need(n, where):
        if len(data) < n:
            raise ValueError(f"{path}: truncated in its {where} ({len(data)} bytes)")

    need(7, "preamble")
    magic, version, n = struct.unpack_from(">4sBH", data)
    if magic != MAGIC:
        raise ValueError(f"{path}: not a gwnlib stream file (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise ValueError(f"{path}: file version {version}, this reader has {VERSION}")
    at = 7
    need(at + n + 1, "codec name")
    name = data[at : at + n].decode(errors="replace")
    at += n
    (k,) = struct.unpack_from(">B", data, at)
    need(at + 1 + k + 8, "channel list")
    channels = tuple(streams.channel_name(c) for c in data[at + 1 : at + 1 + k])
    at += 1 + k
    images, count = struct.unpack_from(">II", data, at)
    at += 8
    end = at + count * (4 + 12 * k)
    if end + 4 > len(data):
        with open(path, "rb") as f:
            data = f.read(end + 4)
        need(end + 4, "index")
    (crc,) = struct.unpack_from(">I", data, end)
    if zlib.crc32(data[:end]) != crc:
        raise ValueError(f"{path}: its index is corrupted (CRC32 mismatch)")
    counts, entries = [], []
    for _ in range(count):
        (n_images,) = struct.unpack_from(">I", data, at)
        at += 4
        entry = {}
        for key in channels:
            offset, length = struct.unpack_from(">QI", data, at)
            at += 12
            if offset + length > size:
                raise ValueError(f"{path} is truncated: chunk stream {key!r} ends past the file")
            entry[key] = (offset, length)
        counts.append(n_images)
        entries.append(entry)
    if sum(counts) != images:
        raise ValueError(f"{path}: its index is inconsistent ({images} images, chunks hold "
                         f"{sum(counts)})")  # fmt: skip
    return Index(name, channels, tuple(counts), tuple(entries))


def read(path: str | Path, index: Index, chunk: int, keys: Sequence[str]) -> dict[str, bytes]:
    """The chunk streams ``keys`` of chunk number ``chunk``, read from ``path`` alone."""
    out = {}
    with open(path, "rb") as f:
        for key in keys:
            if key not in index.entries[chunk]:
                raise ValueError(f"{path} holds no channel {key!r}; it has {index.channels}")
            offset, length = index.entries[chunk][key]
            f.seek(offset)
            out[key] = f.read(length)
    return out


def decode(codec: nn.Module, path: str | Path, tasks: Sequence[int] = (1, 2),
           progress=None) -> dict[str, torch.Tensor]:  # fmt: skip
    """Decode what ``tasks`` need from every chunk of the container ``path`` with ``codec``:
    the latents and ``z{t}_hat``, concatenated over the chunks. Chunk errors name the file and
    the chunk."""
    index = read_index(path)
    if index.name != _name(codec):
        raise ValueError(f"{path} was written by codec {index.name!r}, not {_name(codec)!r}")
    keys = codec.channels_for(tasks)
    parts: dict[str, list[torch.Tensor]] = {}
    numbers = range(len(index.counts))
    for i in progress(numbers) if progress is not None else numbers:
        try:
            out = streams.decompress_chunk(codec, read(path, index, i, keys), tasks)
        except ValueError as error:
            raise ValueError(f"{path}, chunk {i}: {error}") from error
        if len(next(iter(out.values()))) != index.counts[i]:
            raise ValueError(f"{path}, chunk {i}: decoded another number of images than indexed")
        for key, value in out.items():
            parts.setdefault(key, []).append(value)
    return {key: torch.cat(values) for key, values in parts.items()}


def info(path: str | Path) -> dict:
    """What the container ``path`` holds: codec, images, chunks, and per channel its bytes,
    bits per image and the CRC32 of the entropy-model weights that wrote it (the model
    fingerprint, from the first chunk's stream header)."""
    index = read_index(path)
    channels = {}
    with open(path, "rb") as f:
        for key in index.channels:
            total = sum(entry[key][1] for entry in index.entries)
            f.seek(index.entries[0][key][0])
            header = f.read(streams.CHUNK_HEADER.size)
            if len(header) < streams.CHUNK_HEADER.size:
                raise ValueError(f"{path} is truncated in chunk 0's {key!r} header")
            weights_crc = streams.CHUNK_HEADER.unpack(header)[11]
            channels[key] = {"bytes": total, "bits per image": 8 * total / index.images,
                             "weights crc32": f"{weights_crc:08x}"}  # fmt: skip
    return {"codec": index.name, "images": index.images, "chunks": len(index.counts),
            "channels": channels}  # fmt: skip
