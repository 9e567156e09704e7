"""Entropy coding of the Gray-Wyner latents to bytes (paper Sec. 3.3, the codec contract).

The codecs of :mod:`gwnlib.model.codecs` estimate their rates as -log2 of the entropy models'
likelihoods. This module turns those estimates into real byte strings with CompressAI's rANS coder
(``compressai.ans``), the way ``JointAutoregressiveHierarchicalPriors`` (mbt2018) does in
``_compress_ar`` / ``_decompress_ar``, with three differences that the paper's latents require:

- **Fractional means.** The latents are rounded themselves (``y = round(f(x))``, as the authors
  do), so the Gaussian means are fractional while the symbols are integers, and
  :class:`~gwnlib.model.LatentEntropyModel` gives each symbol the bin mass of N(mean, scale).
  CompressAI's tables are zero-mean; coding ``y - round(mean)`` against them costs up to ~8 bits
  per symbol more than that -log2 p at the scale bound 0.11. (The authors' rate estimate rounds
  ``y - mean`` before taking the bin mass of N(0, scale), in effect an integer mean, which those
  zero-mean tables would code; see the entropy module.) We therefore build one integer CDF per
  (scale, mean offset) pair: 128 log-spaced scales from 0.11 to 256 (:data:`SCALE_LEVELS`;
  CompressAI's :func:`~compressai.models.google.get_scale_table` with twice its levels, the
  nearest one chosen) times ``K`` offsets in [-1/2, 1/2) (:data:`OFFSETS`). An element with
  parameters (scale, mean) is coded as the symbol ``y - c`` with ``c = floor(mean + 1/2)``,
  against the table of the tabulated scale nearest to max(scale, 0.11) (in log distance) and of
  the offset bin holding ``mean - c``; table index = ``scale_index * K + offset_index``. Each
  table is the discretised N(offset, scale) on ``[-n, n]`` plus an escape bin for the tail mass,
  quantised to 16-bit CDFs by ``compressai._CXX.pmf_to_quantized_cdf`` as in
  ``EntropyModel._pmf_to_cdf``; symbols outside ``[-n, n]`` go through the escape bin and the
  coder's bypass bits, as in CompressAI.
- **Three channels** (or one per stream Y_S of a K-task codec of :mod:`gwnlib.model.lattice`,
  coded given its supersets' streams). One stream per latent (``y0``, ``y1``, ``y2``) and per
  sample. Y0 is coded
  on its own; Y1 and Y2 given Y0 (the conditional rates of Eq. 11). A receiver decodes only the
  streams its task needs: task 1 reads (Y0, Y1) and task 2 (Y0, Y2) for the three-channel codecs,
  Y0 for both under Joint, Y1 or Y2 alone under Independent.
- **Bit-exact parameters.** The (scale, mean) that pick a table must be the same bits at both
  ends. Encoder and decoder run the *same* code (:func:`~gwnlib.model.entropy.scan`): in raster
  order, the masked 5x5 convolution is applied to the 5x5 window of a buffer that holds only the
  already-coded elements (as mbt2018 does), concatenated with the condition features at that
  position (for Y1 and Y2: the "2 + 2" condition path applied once to the whole, identical, Y0),
  then the 1x1 parameter network. Everything here runs on the CPU in float32, on one thread, one
  sample at a time, whatever device the codec's transforms run on. Both ends must do the same
  float32 arithmetic (the same torch build and CPU kernels): a last-bit difference that moves an
  element across a table boundary would decode other symbols. That is not guaranteed between
  machines, so the header carries a CRC32 of the coded latent and the decoder checks it: such a
  stream fails with a ``ValueError`` instead of decoding to garbage.

Stream format (:data:`HEADER`, big-endian, :data:`HEADER_SIZE` = 32 bytes, then the rANS
payload): magic ``b"GW"``, format version, codec id (index in the codec's ``names``), channel
(:func:`channel_id`: 0, 1, 2 for Y0, Y1, Y2; the bit mask of S for a K-task stream Y_S),
``K``, latent shape (C, H, W), payload length, CRC32s of the header fields so far and the
payload, of the channel's entropy-model weights, of the coded latent and of the Y0 it was coded
given. Every field is checked on decoding (a corrupted shape too, with ``shapes=None``): a
truncated or corrupted stream, one written by another codec, for another
channel, by another model or given another Y0 (samples mixed), and one that decodes to another
latent than was coded, raises ``ValueError``.

Tables and staleness: the CDF tables depend only on ``K`` and the scale table, never on the
model's weights, so they are built once per process and shared. What does depend on the weights is
the CPU float32 view of the entropy models (the modules themselves when already on the CPU in
float32, a copy otherwise) and their weights CRC. :func:`update` builds both; :func:`compress` and
:func:`decompress` build them lazily when missing and rebuild them when the weights changed since
(detected by a fingerprint of every parameter and buffer: identity, storage pointer and in-place
version counter, which optimiser steps, ``load_state_dict`` and ``.to()`` all change) and always
when the codec is in training mode. Writes through ``.data`` bypass the version counter: call
``update()`` after them.
"""

from __future__ import annotations

import copy
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from compressai.layers import MaskedConv2d
from torch import nn

from gwnlib.model.entropy import (
    decode_latent,
    decode_latents,
    encode_latent,
    encode_latents,
    one_thread,
)
from gwnlib.model.tables import OFFSETS, CdfTables, cdf_tables

#: Latent channels, in coding order (Y0 first: Y1 and Y2 are coded given it).
CHANNELS = ("y0", "y1", "y2")
#: Largest latent magnitude :func:`compress` codes. CompressAI's rANS coder sends a symbol outside
#: its table as escape + bypass bits of ``2 |symbol|``, counted in an int32 shifted 4 bits at a
#: time; from about 2^28 the count never ends (measured: 2^27 codes, 2^28 hangs). With the
#: centre at most MAX_MEAN away, |y| <= 2^26 keeps every symbol below 2^27.
MAX_LATENT = 2**26
MAGIC = b"GW"
#: 2: 128 scale levels (nearest), 32 mean offsets; 3: CRC32s of the latent and of its condition;
#: 4: the payload CRC32 also covers the header fields before it (a corrupted shape is caught).
#: Bump it with any change of the tables (the constants above) or of the header.
FORMAT_VERSION = 4
#: magic, version, codec, channel, K, C, H, W, payload length, payload CRC32, weights CRC32,
#: latent CRC32 (the integers coded), condition CRC32 (the Y0 that Y1 or Y2 was coded given; 0
#: for a latent coded on its own).
HEADER = struct.Struct(">2sBBBBHHHIIIII")
HEADER_SIZE = HEADER.size
#: Bytes of the header before its CRC32 field: magic to payload length, covered by that CRC.
_CHECKED_PREFIX = struct.calcsize(">2sBBBBHHHI")


# -- the CPU view of the entropy models ------------------------------------------------------
def _fingerprint(module: nn.Module) -> tuple:
    tensors = [*module.named_parameters(), *module.named_buffers()]
    return tuple(
        (name, id(t), t.data_ptr(), t._version, t.device, t.dtype, tuple(t.shape))
        for name, t in tensors
    )


def _weights_crc(module: nn.Module) -> int:
    """CRC32 of the weights as they act, in CPU float32 (as the coder's copy holds them):
    CompressAI's ``MaskedConv2d`` zeroes its masked weights in place at its first forward, which
    must not change the checksum."""
    state = module.state_dict()
    for name, layer in module.named_modules():
        if isinstance(layer, MaskedConv2d):
            state[f"{name}.weight" if name else "weight"] = layer.weight * layer.mask
    crc = 0
    for _, t in sorted(state.items()):
        t = t.detach().to("cpu", torch.float32) if t.is_floating_point() else t.detach().cpu()
        crc = zlib.crc32(t.contiguous().numpy().tobytes(), crc)
    return crc


@dataclass
class _CoderState:
    fingerprint: tuple
    models: dict[str, nn.Module]  # CPU float32 entropy models
    weights_crc: dict[str, int]
    tables: CdfTables


def update(codec: nn.Module, force: bool = False) -> bool:
    """Build the integer CDF tables and the CPU view of ``codec``'s entropy models.

    Returns whether anything was (re)built: nothing is when the weights have not changed since
    the last call, unless ``force`` or the codec is in training mode. The weights are compared
    by checksum, so writes through ``.data`` are seen too (:func:`compress` and
    :func:`decompress` check only the cheap fingerprint).
    """
    return _update(codec, force, exact=True)


def _update(codec: nn.Module, force: bool, exact: bool) -> bool:
    state = getattr(codec, "_entropy_coder", None)
    fingerprint = _fingerprint(codec.entropy_models)
    current = state is not None and state.fingerprint == fingerprint
    if current and exact:
        models = codec.entropy_models.items()
        current = {key: _weights_crc(model) for key, model in models} == state.weights_crc
    if current and not (force or codec.training):
        return False
    models = {}
    for key, model in codec.entropy_models.items():
        on_cpu = all(
            p.device.type == "cpu" and p.dtype == torch.float32
            for p in [*model.parameters(), *model.buffers()]
        )
        models[key] = model if on_cpu else copy.deepcopy(model).to("cpu", torch.float32)
    codec._entropy_coder = _CoderState(
        fingerprint,
        models,
        {key: _weights_crc(model) for key, model in models.items()},
        cdf_tables(OFFSETS),
    )
    return True


def _state(codec: nn.Module) -> _CoderState:
    _update(codec, False, exact=False)  # lazily: a no-op when the fingerprint is unchanged
    return codec._entropy_coder


# -- stream headers ---------------------------------------------------------------------------
def channel_id(key: str) -> int:
    """The header's channel number of latent ``key``: 0 for the two-task codecs' Y0, else the
    bit mask of the stream's tasks (``"y1"`` -> 1, ``"y2"`` -> 2, ``"y12"`` -> 3, ``"y123"`` -> 7:
    the two-task numbers 0, 1, 2 and the K-task streams of :mod:`gwnlib.model.lattice` in one
    byte)."""
    if key == "y0":
        return 0
    return sum(1 << (int(task) - 1) for task in key[1:])


def channel_name(number: int) -> str:
    """Inverse of :func:`channel_id`."""
    if number == 0:
        return "y0"
    return "y" + "".join(str(i + 1) for i in range(8) if number >> i & 1)


def latent_crc(y: torch.Tensor) -> int:
    """CRC32 of an integer-valued latent's values (as int32, in C order)."""
    return zlib.crc32(y.detach().to("cpu", torch.int32).contiguous().numpy().tobytes())


def pack(
    codec_id: int,
    key: str,
    shape: Sequence[int],
    payload: bytes,
    weights_crc: int,
    crc: int = 0,
    condition_crc: int = 0,
) -> bytes:
    """Header + payload for channel ``key`` of the codec numbered ``codec_id``
    (:attr:`~gwnlib.model.codecs.GrayWynerCodec.codec_id`); ``crc`` and ``condition_crc``:
    :func:`latent_crc` of the coded latent and of the Y0 it was coded given (0: none)."""
    c, h, w = shape
    if max(c, h, w) >= 2**16:
        raise ValueError(f"latent shape {tuple(shape)} does not fit the stream header (< 65536)")
    fields = (MAGIC, FORMAT_VERSION, codec_id, channel_id(key), OFFSETS, c, h, w)
    prefix = struct.pack(">2sBBBBHHHI", *fields, len(payload))
    checksum = zlib.crc32(payload, zlib.crc32(prefix))
    return HEADER.pack(*fields, len(payload), checksum, weights_crc, crc, condition_crc) + payload


def unpack(
    stream: bytes,
    names: Sequence[str],
    name: str,
    key: str,
    shape: Sequence[int] | None,
    weights_crc: int,
) -> tuple[tuple[int, int, int], bytes, int, int]:
    """Check ``stream``'s header against codec ``name`` (``names``: every codec, by id),
    channel ``key``, ``shape`` and the model's weights; return (shape, payload, latent CRC32,
    condition CRC32). Any mismatch raises ``ValueError``."""
    (c, h, w, length), payload, ycrc, ccrc = _checked(
        stream, f"{name} stream {key!r}", "stream", HEADER, _CHECKED_PREFIX, MAGIC,
        ("format", FORMAT_VERSION), names, name, key, weights_crc, shape,
    )  # fmt: skip
    return (c, h, w), payload, ycrc, ccrc


def _checked(stream, where, noun, layout, prefix, magic, version, names, name, key, weights_crc,
             shape=None):  # fmt: skip
    """The checks :func:`unpack` and :func:`unpack_chunk` share, on a header of ``layout``
    (magic, version, codec, channel, offsets, C, H, W, [N,] length, CRC32, weights CRC32, latent
    CRC32, condition CRC32): returns ((C, H, W[, N]), payload, latent CRC32, condition CRC32)."""
    if not isinstance(stream, (bytes, bytearray, memoryview)):
        raise ValueError(f"{where}: expected bytes; got {type(stream).__name__}")
    stream = bytes(stream)
    if len(stream) < layout.size:
        raise ValueError(f"{where} is truncated: {len(stream)} bytes, header needs {layout.size}")
    fields = layout.unpack_from(stream)
    found, written, codec_id, channel, offsets, c, h, w = fields[:8]
    length, crc, wcrc, ycrc, ccrc = fields[-5:]
    if found != magic:
        raise ValueError(f"{where}: not a gwnlib {noun} (magic {found!r}, expected {magic!r})")
    if written != version[1]:
        raise ValueError(f"{where}: {version[0]} version {written}, this reader has {version[1]}")
    if codec_id != names.index(name):
        other = names[codec_id] if codec_id < len(names) else f"unknown codec id {codec_id}"
        raise ValueError(f"{where}: the {noun} was written by codec {other!r}, not {name!r}")
    if channel != channel_id(key):
        raise ValueError(
            f"{where}: the {noun} holds channel {channel_name(channel)!r}, not {key!r}"
        )
    if offsets != OFFSETS:
        raise ValueError(f"{where}: written with {offsets} mean offsets, this reader has {OFFSETS}")
    if shape is not None and tuple(shape) != (c, h, w):
        raise ValueError(f"{where}: header shape {(c, h, w)} differs from shapes {tuple(shape)}")
    payload = stream[layout.size :]
    if len(payload) != length:
        state = "truncated" if len(payload) < length else "longer than its header says"
        raise ValueError(f"{where} is {state}: payload {len(payload)} bytes, header {length}")
    if zlib.crc32(payload, zlib.crc32(stream[:prefix])) != crc:
        raise ValueError(f"{where} is corrupted: CRC32 mismatch (header or payload)")
    if wcrc != weights_crc:
        raise ValueError(
            f"{where} was written by a model with other entropy-model weights (CRC32 mismatch)"
        )
    return fields[5:-4], payload, ycrc, ccrc


# -- the codec-level API ---------------------------------------------------------------------
@torch.no_grad()
def compress(codec: nn.Module, x: torch.Tensor) -> dict:
    """Encode the batch ``x`` to bytes: one stream per latent channel and per sample.

    Returns ``{"strings": {key: [bytes, ...B]}, "shapes": {key: (C, H, W)}}`` over the codec's
    channels (``y0``, ``y1``, ``y2``; absent ones absent). Builds the tables lazily (see
    :func:`update`). The latents come from ``codec.encode`` on the codec's device; the entropy
    coding runs on the CPU.
    """
    state = _state(codec)
    latents, _ = codec.encode(x)
    with one_thread():
        return _compress_latents(codec, state, latents, x.shape[0])


def _compress_latents(codec: nn.Module, state: _CoderState, latents: dict, batch: int) -> dict:
    latents = {key: latents[key].detach().to("cpu", torch.float32) for key in latents}
    _check_latents(latents)
    strings: dict[str, list[bytes]] = {key: [] for key in latents}
    shapes = {key: tuple(y.shape[1:]) for key, y in latents.items()}
    for i in range(batch):
        sample = {key: y[i : i + 1].contiguous() for key, y in latents.items()}
        for key in sample:  # the codec's latents come in coding order
            model = state.models[key]
            given = codec.condition(key, sample)
            payload = encode_latent(model, sample[key], given, state.tables)
            crcs = latent_crc(sample[key]), 0 if given is None else latent_crc(given)
            strings[key].append(
                pack(codec.codec_id, key, shapes[key], payload, state.weights_crc[key], *crcs)
            )
    return {"strings": strings, "shapes": shapes}


def _check_latents(latents: dict) -> None:
    """Every latent finite, integer-valued and within the coder's range (ValueError if not)."""
    for key, y in latents.items():
        if not torch.isfinite(y).all():
            raise ValueError(f"latent {key!r} holds inf or NaN; cannot entropy-code it")
        if not torch.equal(y, torch.round(y)):
            raise ValueError(f"latent {key!r} is not integer-valued; cannot entropy-code it")
        largest = y.abs().max().item() if y.numel() else 0.0
        if largest > MAX_LATENT:
            raise ValueError(
                f"latent {key!r} reaches {largest:.3g}, outside the coder's range "
                f"|y| <= {MAX_LATENT} (2^26): the rANS coder cannot code such values; is the "
                "input scaled as the codec was trained (for images, [0, 1])?"
            )


@torch.no_grad()
def decompress(
    codec: nn.Module, strings: dict, shapes: dict | None = None, tasks: Sequence[int] = (1, 2)
) -> dict:
    """Decode what ``tasks`` need from :func:`compress`'s ``strings`` (and ``shapes``).

    Reads only the needed channels (``codec.channels_for``); the others may be absent or garbage.
    Returns the decoded latents (B, C, H, W) on the codec's device and ``z{t}_hat`` for each
    requested task. Bad streams raise ``ValueError``.
    """
    state = _state(codec)
    needed = codec.channels_for(tasks)
    shapes = shapes or {}
    counts = set()
    for key in needed:
        if key not in strings or not isinstance(strings[key], (list, tuple)):
            raise ValueError(f"tasks {tuple(tasks)} need a list of {key!r} streams in strings")
        counts.add(len(strings[key]))
    if len(counts) != 1 or 0 in counts:
        raise ValueError("the needed streams must hold the same, nonzero, number of samples")
    decoded: dict[str, list[torch.Tensor]] = {key: [] for key in needed}
    with one_thread():
        for i in range(counts.pop()):
            sample: dict[str, torch.Tensor] = {}
            for key in needed:
                where = f"{codec.name} stream {key!r} of sample {i}"
                shape, payload, crc, condition_crc = unpack(
                    strings[key][i], codec.names, getattr(codec, "header_name", codec.name), key,
                    shapes.get(key), state.weights_crc[key],
                )  # fmt: skip
                condition = codec.condition(key, sample)
                if (0 if condition is None else latent_crc(condition)) != condition_crc:
                    given = "Y0" if "y0" in needed else "superset streams"
                    raise ValueError(
                        f"{where} was coded given another {given} than the one decoded here "
                        "(CRC32 mismatch): streams of different samples or images are mixed"
                    )
                model = state.models[key]
                sample[key] = decode_latent(model, payload, condition, shape, state.tables)
                if latent_crc(sample[key]) != crc:
                    raise ValueError(
                        f"{where} decoded to another latent than was encoded (CRC32 mismatch): "
                        "the decoder picked other tables than the encoder, as when their float32 "
                        "arithmetic differs (another machine, torch build or CPU kernels)"
                    )
                decoded[key].append(sample[key])
    device = next(codec.decoders.parameters()).device
    dtype = next(codec.decoders.parameters()).dtype
    latents = {key: torch.cat(values).to(device, dtype) for key, values in decoded.items()}
    out: dict[str, torch.Tensor] = dict(latents)
    for task in sorted(set(tasks)):
        out[f"z{task}_hat"] = codec.decode(codec.decoder_input(latents, task), task)
    return out


# -- chunks: many samples per stream ----------------------------------------------------------
#: A chunk stream: the latents of N samples of one channel coded together in one rANS payload,
#: so the coder's fixed cost and the header are paid once per chunk, not per sample.
CHUNK_MAGIC = b"GC"
#: 1: the fields of :data:`CHUNK_HEADER`.
CHUNK_VERSION = 1
#: magic, version, codec, channel, K, C, H, W, N (samples), payload length, CRC32 of the fields
#: so far and the payload, weights CRC32, latent CRC32 (all N samples), condition CRC32.
CHUNK_HEADER = struct.Struct(">2sBBBBHHHIIIIII")
_CHUNK_PREFIX = struct.calcsize(">2sBBBBHHHII")


def pack_chunk(codec_id, key, shape, count, payload, weights_crc, crc=0, condition_crc=0):
    """Header + payload of a chunk of ``count`` samples of channel ``key`` (see :func:`pack`)."""
    c, h, w = shape
    if max(c, h, w) >= 2**16:
        raise ValueError(f"latent shape {tuple(shape)} does not fit the chunk header (< 65536)")
    fields = (CHUNK_MAGIC, CHUNK_VERSION, codec_id, channel_id(key), OFFSETS, c, h, w, count)
    prefix = struct.pack(">2sBBBBHHHII", *fields, len(payload))
    checksum = zlib.crc32(payload, zlib.crc32(prefix))
    return CHUNK_HEADER.pack(*fields, len(payload), checksum, weights_crc, crc, condition_crc) + (
        payload
    )


def unpack_chunk(stream, names, name, key, weights_crc):
    """Check a chunk stream's header (as :func:`unpack`); return (shape, count, payload,
    latent CRC32, condition CRC32). Any mismatch raises ``ValueError``."""
    (c, h, w, count, _), payload, ycrc, ccrc = _checked(
        stream, f"{name} chunk {key!r}", "chunk", CHUNK_HEADER, _CHUNK_PREFIX, CHUNK_MAGIC,
        ("chunk", CHUNK_VERSION), names, name, key, weights_crc,
    )  # fmt: skip
    return (c, h, w), count, payload, ycrc, ccrc


@torch.no_grad()
def compress_chunk(codec: nn.Module, x: torch.Tensor) -> dict:
    """Encode the batch ``x`` as one chunk: one stream per latent channel holding every sample,
    coded together (all samples advance through the raster scan at once, the entropy-parameter
    network running once per position for the whole batch). Returns ``{"strings": {key:
    bytes}, "count": N}``. The bytes differ from :func:`compress`'s; decode them with
    :func:`decompress_chunk`."""
    state = _state(codec)
    latents, _ = codec.encode(x)
    latents = {key: y.detach().to("cpu", torch.float32).contiguous() for key, y in latents.items()}
    _check_latents(latents)
    strings = {}
    with one_thread():
        for key, y in latents.items():
            given = codec.condition(key, latents)
            payload = encode_latents(state.models[key], y, given, state.tables)
            crcs = latent_crc(y), 0 if given is None else latent_crc(given)
            strings[key] = pack_chunk(codec.codec_id, key, tuple(y.shape[1:]), len(y), payload,
                                      state.weights_crc[key], *crcs)  # fmt: skip
    return {"strings": strings, "count": int(x.shape[0])}


@torch.no_grad()
def decompress_chunk(codec: nn.Module, strings: dict, tasks: Sequence[int] = (1, 2)) -> dict:
    """Decode what ``tasks`` need from :func:`compress_chunk`'s ``strings``: the latents
    (N, C, H, W) and ``z{t}_hat`` per task, as :func:`decompress`. Bad chunks raise
    ``ValueError`` (a chunk coded given another chunk's Y0 too)."""
    state = _state(codec)
    name = getattr(codec, "header_name", codec.name)
    decoded: dict[str, torch.Tensor] = {}
    counts = set()
    with one_thread():
        for key in codec.channels_for(tasks):
            if key not in strings:
                raise ValueError(f"tasks {tuple(tasks)} need the {key!r} chunk in strings")
            shape, count, payload, crc, condition_crc = unpack_chunk(
                strings[key], codec.names, name, key, state.weights_crc[key]
            )
            counts.add(count)
            if len(counts) > 1:
                others = sorted(counts - {count})
                raise ValueError(
                    f"{name} chunk {key!r} holds {count} samples, the others {others}: chunks of "
                    "different images are mixed"
                )
            condition = codec.condition(key, decoded)
            if (0 if condition is None else latent_crc(condition)) != condition_crc:
                raise ValueError(
                    f"{name} chunk {key!r} was coded given another Y0 (or superset streams) than "
                    "the one decoded here (CRC32 mismatch): chunks of different images are mixed"
                )
            decoded[key] = decode_latents(state.models[key], payload, condition, shape,
                                          state.tables, count)  # fmt: skip
            if latent_crc(decoded[key]) != crc:
                raise ValueError(
                    f"{name} chunk {key!r} decoded to another latent than was encoded (CRC32 "
                    "mismatch): the decoder's float32 arithmetic differs from the encoder's"
                )
    device = next(codec.decoders.parameters()).device
    dtype = next(codec.decoders.parameters()).dtype
    out: dict[str, torch.Tensor] = {k: v.to(device, dtype) for k, v in decoded.items()}
    for task in sorted(set(tasks)):
        out[f"z{task}_hat"] = codec.decode(codec.decoder_input(out, task), task)
    return out
