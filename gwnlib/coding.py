"""Entropy coding of the Gray-Wyner latents to bytes (paper Sec. 3.3, the codec contract).

The codecs of :mod:`gwnlib.codecs` estimate their rates as -log2 of the entropy models'
likelihoods. This module turns those estimates into real byte strings with CompressAI's rANS coder
(``compressai.ans``), the way ``JointAutoregressiveHierarchicalPriors`` (mbt2018) does in
``_compress_ar`` / ``_decompress_ar``, with three differences that the paper's latents require:

- **Fractional means.** The latents are rounded themselves (``y = round(f(x))``, as the authors
  do), so the Gaussian means are fractional while the symbols are integers, and
  :class:`~gwnlib.entropy.LatentEntropyModel` gives each symbol the bin mass of N(mean, scale).
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
- **Three channels.** One stream per latent (``y0``, ``y1``, ``y2``) and per sample. Y0 is coded
  on its own; Y1 and Y2 given Y0 (the conditional rates of Eq. 11). A receiver decodes only the
  streams its task needs: task 1 reads (Y0, Y1) and task 2 (Y0, Y2) for the three-channel codecs,
  Y0 for both under Joint, Y1 or Y2 alone under Independent.
- **Bit-exact parameters.** The (scale, mean) that pick a table must be the same bits at both
  ends. Encoder and decoder run the *same* code (:func:`_scan`): in raster order, the masked 5x5
  convolution is applied to the 5x5 window of a buffer that holds only the already-coded elements
  (as mbt2018 does), concatenated with the condition features at that position (for Y1 and Y2:
  the "2 + 2" condition path applied once to the whole, identical, Y0), then the 1x1 parameter
  network. Everything here runs on the CPU in float32, on one thread, one sample at a time,
  whatever device the codec's transforms run on. Both ends must do the same float32 arithmetic
  (the same torch build and CPU kernels): a last-bit difference that moves an element across a
  table boundary would decode other symbols. That is not guaranteed between machines, so the
  header carries a CRC32 of the coded latent and the decoder checks it: such a stream fails with
  a ``ValueError`` instead of decoding to garbage.

Stream format (:data:`HEADER`, big-endian, :data:`HEADER_SIZE` = 32 bytes, then the rANS
payload): magic ``b"GW"``, format version, codec id (index in ``CODECS``), channel (0, 1, 2),
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

import contextlib
import copy
import functools
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from compressai._CXX import pmf_to_quantized_cdf
from compressai.ans import RansDecoder, RansEncoder
from compressai.layers import MaskedConv2d
from compressai.models.google import get_scale_table
from torch import nn

#: Latent channels, in coding order (Y0 first: Y1 and Y2 are coded given it).
CHANNELS = ("y0", "y1", "y2")
#: Mean-offset bins per scale (``K``); the offset error is at most 1 / (2K).
OFFSETS = 32
#: Bits of the integer CDFs (CompressAI's rANS precision).
PRECISION = 16
#: Tail mass left out of each table's range; it becomes the escape bin.
TAIL_MASS = 1e-9
#: Lower bound of the scales (CompressAI's ``GaussianConditional`` default, as in the likelihood).
SCALE_BOUND = 0.11
#: Log-spaced scales of the table grid from 0.11 to 256 (CompressAI uses 64; 128 halves the step).
SCALE_LEVELS = 128
#: Means are clamped to this magnitude before picking a table (symbols stay int32).
MAX_MEAN = 2.0**20
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


# -- the table grid ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CdfTables:
    """Integer CDFs of N(offset, scale) for every (scale, offset) pair; index = s * K + k."""

    scales: torch.Tensor  # (S,) float32, increasing
    offsets: int  # K
    cdfs: tuple[list[int], ...]
    cdf_lengths: tuple[int, ...]
    value_offsets: tuple[int, ...]  # the table's first symbol, -n

    def indexes(self, scales: torch.Tensor, means: torch.Tensor) -> tuple[list[int], list[int]]:
        """Table index and integer centre ``c`` for each element of (``scales``, ``means``)."""
        scales = scales.float().clamp_min(SCALE_BOUND).contiguous()
        # The nearest tabulated scale in log distance (a ratio of at most 1.03 with 128 levels).
        upper = torch.searchsorted(self.scales, scales).clamp(1, len(self.scales) - 1)
        lower = upper - 1
        closer_below = torch.log(scales / self.scales[lower]) < torch.log(
            self.scales[upper] / scales
        )
        s = torch.where(closer_below, lower, upper)
        means = means.float().clamp(-MAX_MEAN, MAX_MEAN)
        centres = torch.floor(means + 0.5)
        k = torch.floor((means - centres + 0.5) * self.offsets).clamp(0, self.offsets - 1)
        index = s * self.offsets + k.long()
        return index.tolist(), centres.long().tolist()

    def select(self, indexes: Sequence[int]) -> tuple[list[int], list, list[int], list[int]]:
        """Only the tables ``indexes`` use, and the indexes renumbered into them.

        Passing the whole grid to the C++ coder at every call would convert ~10^5 integers each
        time; the serial decoder calls it once per position.
        """
        used = sorted(set(indexes))
        local = {index: i for i, index in enumerate(used)}
        return (
            [local[i] for i in indexes],
            [self.cdfs[i] for i in used],
            [self.cdf_lengths[i] for i in used],
            [self.value_offsets[i] for i in used],
        )


@functools.lru_cache(maxsize=4)
def cdf_tables(offsets: int = OFFSETS) -> CdfTables:
    """The (scale, mean offset) grid of integer CDFs, built once per ``offsets`` (cached).

    Like ``GaussianConditional.update`` (CompressAI), each table covers the mean +- n symbols
    with n = ceil(scale * Phi^-1(1 - TAIL_MASS / 2)) + 1 (the +1 for the offset), and its last
    bin holds the mass outside; ``pmf_to_quantized_cdf`` gives every bin a nonzero frequency.
    """
    if not 1 <= offsets <= 255:
        raise ValueError(f"offsets must be in 1..255; got {offsets}")
    scales = get_scale_table(SCALE_BOUND, 256, SCALE_LEVELS).float()
    multiplier = -torch.special.ndtri(torch.tensor(TAIL_MASS / 2, dtype=torch.float64)).item()
    mus = -0.5 + (torch.arange(offsets, dtype=torch.float64) + 0.5) / offsets
    cdfs, lengths, starts = [], [], []
    for scale in scales.double().tolist():
        n = int(torch.ceil(torch.tensor(scale * multiplier)).item()) + 1
        symbols = torch.arange(-n, n + 1, dtype=torch.float64)
        upper = torch.special.ndtr((symbols[None] + 0.5 - mus[:, None]) / scale)
        lower = torch.special.ndtr((symbols[None] - 0.5 - mus[:, None]) / scale)
        pmf = upper - lower
        tail = lower[:, 0] + torch.special.ndtr((mus - n - 0.5) / scale)  # below -n; above n
        for k in range(offsets):
            cdf = pmf_to_quantized_cdf(pmf[k].tolist() + [tail[k].item()], PRECISION)
            cdfs.append(cdf)
            lengths.append(len(cdf))
            starts.append(-n)
    return CdfTables(scales, offsets, tuple(cdfs), tuple(lengths), tuple(starts))


# -- which streams each task needs -----------------------------------------------------------
def channels_for(name: str, tasks: Sequence[int]) -> tuple[str, ...]:
    """Latents that decoding ``tasks`` needs: task i reads (Y0, Yi), or Y0 (Joint), or Yi
    (Independent), in coding order."""
    from gwnlib.codecs import THREE_CHANNEL

    tasks = _check_tasks(tasks)
    if name in THREE_CHANNEL:
        needed = {"y0"} | {f"y{t}" for t in tasks}
    elif name == "joint":
        needed = {"y0"}
    else:
        needed = {f"y{t}" for t in tasks}
    return tuple(key for key in CHANNELS if key in needed)


def _check_tasks(tasks: Sequence[int]) -> tuple[int, ...]:
    tasks = tuple(tasks)
    if not tasks or any(t not in (1, 2) for t in tasks):
        raise ValueError(f"tasks must be a non-empty subset of (1, 2); got {tasks}")
    return tuple(sorted(set(tasks)))


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


# -- the serial scan shared by encoder and decoder ------------------------------------------
@contextlib.contextmanager
def _one_thread():
    """Run the entropy coder's small tensor operations on one CPU thread.

    Serial decoding is a long run of tiny operations, which multi-threaded kernels slow down
    (by 100x when the cores are busy), and a fixed thread count keeps the float reductions that
    pick the tables independent of the machine's core count.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _pointwise(net: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The 1x1 parameter network at one position, (1, channels) -> (1, 2C), as linear layers."""
    for layer in net:
        if isinstance(layer, nn.Conv2d):
            if layer.kernel_size != (1, 1):
                raise ValueError("the parameter network must be made of 1x1 convolutions")
            inputs = F.linear(inputs, layer.weight.flatten(1), layer.bias)
        else:
            inputs = layer(inputs)
    return inputs


def _scan(
    model: nn.Module,
    condition: torch.Tensor | None,
    shape: tuple[int, int, int],
    tables: CdfTables,
    code: Callable[[int, int, list[int], list[int]], torch.Tensor],
) -> torch.Tensor:
    """Visit the latent in raster order; at each position compute (scale, mean) from the 5x5
    window of already-coded elements (and the condition features there), pick the tables and
    let ``code(h, w, indexes, centres)`` return the position's integer values. Returns the
    latent (1, C, H, W). The encoder and the decoder both run this, so their tables agree.
    """
    channels, height, width = shape
    context = model.context
    size = context.kernel_size[0]
    pad = size // 2
    # The masked convolution at one position, as a matrix-vector product over the window (a
    # conv2d call on a 5x5 window costs milliseconds on the CPU; this, microseconds).
    weight = (context.weight * context.mask).flatten(1)
    features = None if condition is None else model.condition(condition)
    y_hat = torch.zeros(1, channels, height + 2 * pad, width + 2 * pad)
    for h in range(height):
        for w in range(width):
            window = y_hat[:, :, h : h + size, w : w + size].reshape(1, -1)
            inputs = F.linear(window, weight, context.bias)
            if features is not None:
                inputs = torch.cat([features[:, :, h, w], inputs], dim=1)
            scales, means = _pointwise(model.parameters_net, inputs).chunk(2, dim=1)
            indexes, centres = tables.indexes(scales.flatten(), means.flatten())
            y_hat[0, :, h + pad, w + pad] = code(h, w, indexes, centres).float()
    return y_hat[:, :, pad : pad + height, pad : pad + width]


def encode_latent(
    model: nn.Module, y: torch.Tensor, condition: torch.Tensor | None, tables: CdfTables
) -> bytes:
    """rANS payload of one sample's integer latent ``y`` (1, C, H, W) (no header)."""
    symbols: list[int] = []
    indexes: list[int] = []
    values = y[0].long()

    def code(h, w, index, centres):
        column = values[:, h, w]
        symbols.extend((column - torch.tensor(centres)).tolist())
        indexes.extend(index)
        return column

    _scan(model, condition, tuple(y.shape[1:]), tables, code)
    local, cdfs, lengths, starts = tables.select(indexes)
    return RansEncoder().encode_with_indexes(symbols, local, cdfs, lengths, starts)


def decode_latent(
    model: nn.Module,
    payload: bytes,
    condition: torch.Tensor | None,
    shape: tuple[int, int, int],
    tables: CdfTables,
) -> torch.Tensor:
    """Inverse of :func:`encode_latent`: the latent (1, C, H, W) as float32 integers."""
    decoder = RansDecoder()
    decoder.set_stream(payload)

    def code(h, w, index, centres):
        local, cdfs, lengths, starts = tables.select(index)
        symbols = decoder.decode_stream(local, cdfs, lengths, starts)
        return torch.tensor(symbols) + torch.tensor(centres)

    return _scan(model, condition, shape, tables, code)


# -- stream headers ---------------------------------------------------------------------------
def latent_crc(y: torch.Tensor) -> int:
    """CRC32 of an integer-valued latent's values (as int32, in C order)."""
    return zlib.crc32(y.detach().to("cpu", torch.int32).contiguous().numpy().tobytes())


def pack(
    name: str,
    key: str,
    shape: Sequence[int],
    payload: bytes,
    weights_crc: int,
    crc: int = 0,
    condition_crc: int = 0,
) -> bytes:
    """Header + payload for channel ``key`` of codec ``name``; ``crc`` and ``condition_crc``:
    :func:`latent_crc` of the coded latent and of the Y0 it was coded given (0: none)."""
    from gwnlib.codecs import CODECS

    c, h, w = shape
    if max(c, h, w) >= 2**16:
        raise ValueError(f"latent shape {tuple(shape)} does not fit the stream header (< 65536)")
    fields = (MAGIC, FORMAT_VERSION, CODECS.index(name), CHANNELS.index(key), OFFSETS, c, h, w)
    prefix = struct.pack(">2sBBBBHHHI", *fields, len(payload))
    checksum = zlib.crc32(payload, zlib.crc32(prefix))
    return HEADER.pack(*fields, len(payload), checksum, weights_crc, crc, condition_crc) + payload


def unpack(
    stream: bytes, name: str, key: str, shape: Sequence[int] | None, weights_crc: int
) -> tuple[tuple[int, int, int], bytes, int, int]:
    """Check ``stream``'s header against codec ``name``, channel ``key``, ``shape`` and the
    model's weights; return (shape, payload, latent CRC32, condition CRC32). Any mismatch
    raises ``ValueError``."""
    from gwnlib.codecs import CODECS

    where = f"{name} stream {key!r}"
    if not isinstance(stream, (bytes, bytearray, memoryview)):
        raise ValueError(f"{where}: expected bytes; got {type(stream).__name__}")
    stream = bytes(stream)
    if len(stream) < HEADER_SIZE:
        raise ValueError(f"{where} is truncated: {len(stream)} bytes, header needs {HEADER_SIZE}")
    magic, version, codec_id, channel, offsets, c, h, w, length, crc, wcrc, ycrc, ccrc = (
        HEADER.unpack_from(stream)
    )
    if magic != MAGIC:
        raise ValueError(f"{where}: not a gwnlib stream (magic {magic!r}, expected {MAGIC!r})")
    if version != FORMAT_VERSION:
        raise ValueError(f"{where}: format version {version}, this reader has {FORMAT_VERSION}")
    if codec_id != CODECS.index(name):
        other = CODECS[codec_id] if codec_id < len(CODECS) else f"unknown codec id {codec_id}"
        raise ValueError(f"{where}: the stream was written by codec {other!r}, not {name!r}")
    if channel != CHANNELS.index(key):
        other = CHANNELS[channel] if channel < len(CHANNELS) else f"unknown channel {channel}"
        raise ValueError(f"{where}: the stream holds channel {other!r}, not {key!r}")
    if offsets != OFFSETS:
        raise ValueError(f"{where}: written with {offsets} mean offsets, this reader has {OFFSETS}")
    if shape is not None and tuple(shape) != (c, h, w):
        raise ValueError(f"{where}: header shape {(c, h, w)} differs from shapes {tuple(shape)}")
    payload = stream[HEADER_SIZE:]
    if len(payload) != length:
        state = "truncated" if len(payload) < length else "longer than its header says"
        raise ValueError(f"{where} is {state}: payload {len(payload)} bytes, header {length}")
    if zlib.crc32(payload, zlib.crc32(stream[:_CHECKED_PREFIX])) != crc:
        raise ValueError(f"{where} is corrupted: CRC32 mismatch (header or payload)")
    if wcrc != weights_crc:
        raise ValueError(
            f"{where} was written by a model with other entropy-model weights (CRC32 mismatch)"
        )
    return (c, h, w), payload, ycrc, ccrc


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
    with _one_thread():
        return _compress_latents(codec, state, latents, x.shape[0])


def _compress_latents(codec: nn.Module, state: _CoderState, latents: dict, batch: int) -> dict:
    latents = {key: latents[key].detach().to("cpu", torch.float32) for key in latents}
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
    strings: dict[str, list[bytes]] = {key: [] for key in latents}
    shapes = {key: tuple(y.shape[1:]) for key, y in latents.items()}
    for i in range(batch):
        sample = {key: y[i : i + 1].contiguous() for key, y in latents.items()}
        condition = sample.get("y0") if "y0" in sample and len(sample) > 1 else None
        for key in CHANNELS:
            if key not in sample:
                continue
            model = state.models[key]
            given = None if key == "y0" else condition
            payload = encode_latent(model, sample[key], given, state.tables)
            crcs = latent_crc(sample[key]), 0 if given is None else latent_crc(given)
            strings[key].append(
                pack(codec.name, key, shapes[key], payload, state.weights_crc[key], *crcs)
            )
    return {"strings": strings, "shapes": shapes}


@torch.no_grad()
def decompress(
    codec: nn.Module, strings: dict, shapes: dict | None = None, tasks: Sequence[int] = (1, 2)
) -> dict:
    """Decode what ``tasks`` need from :func:`compress`'s ``strings`` (and ``shapes``).

    Reads only the needed channels (:func:`channels_for`); the others may be absent or garbage.
    Returns the decoded latents (B, C, H, W) on the codec's device and ``z{t}_hat`` for each
    requested task. Bad streams raise ``ValueError``.
    """
    state = _state(codec)
    needed = channels_for(codec.name, tasks)
    shapes = shapes or {}
    counts = set()
    for key in needed:
        if key not in strings or not isinstance(strings[key], (list, tuple)):
            raise ValueError(f"tasks {tuple(tasks)} need a list of {key!r} streams in strings")
        counts.add(len(strings[key]))
    if len(counts) != 1 or 0 in counts:
        raise ValueError("the needed streams must hold the same, nonzero, number of samples")
    decoded: dict[str, list[torch.Tensor]] = {key: [] for key in needed}
    with _one_thread():
        for i in range(counts.pop()):
            sample: dict[str, torch.Tensor] = {}
            for key in needed:
                where = f"{codec.name} stream {key!r} of sample {i}"
                shape, payload, crc, condition_crc = unpack(
                    strings[key][i], codec.name, key, shapes.get(key), state.weights_crc[key]
                )
                condition = sample.get("y0") if key != "y0" else None
                if (0 if condition is None else latent_crc(condition)) != condition_crc:
                    raise ValueError(
                        f"{where} was coded given another Y0 than the one decoded here (CRC32 "
                        "mismatch): streams of different samples or images are mixed"
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
    for task in _check_tasks(tasks):
        out[f"z{task}_hat"] = codec.decode(codec.decoder_input(latents, task), task)
    return out
