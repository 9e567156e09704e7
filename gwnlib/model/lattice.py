"""A Gray-Wyner network for K tasks: the lattice of streams (chapter "Beyond two tasks").

The paper stops at two tasks (Sec. 5: with K tasks a Gray-Wyner network has a channel for each of
the 2^K - 1 non-empty sets of receivers, so "a more dynamic architecture might be required").
This module is that network, built from the two-task codec's parts:

- **Streams.** One latent Y_S per stream S, a set of tasks (:func:`gwnlib.theory.multiterminal.
  subsets` order: (1, 2, 3), (1, 2), (1, 3), (2, 3), (1,), (2,), (3,) for K = 3). Decoder i reads
  every Y_S with i in S, concatenated; each stream has E / (most streams a decoder reads) channels,
  so that a decoder of the full lattice reads E channels, as a decoder of the two-task Shared codec
  reads E/2 + E/2.
- **Encoders and the merge.** Encoder i sees the whole input and proposes a candidate for every
  stream it belongs to. Eq. 14 generalised: [Y_S]_j is the mean of the candidates of the
  encoders in S where they all agree, else 0, and Eq. 15's alignment term is summed over every
  pair of encoders in every stream (:func:`merge_candidates`, :func:`pairwise_alignment`). A
  stream of one task is that task's private latent.
- **Entropy models.** Y_S is coded given every stream of a strict superset of S (Y_12 given
  Y_123; Y_1 given Y_123, Y_12 and Y_13): the conditional rates of Eq. 11, each superset being
  something every receiver of S already reads. The models are the two-task ones
  (:class:`~gwnlib.model.entropy.LatentEntropyModel`), conditioned through the same "2 + 2" path.
- **Rates.** r_S in bits per input pixel; R_t = sum r_S, R_r = sum |S| r_S; the loss prices
  stream S by :func:`gwnlib.theory.multiterminal.stream_prices` (the generalised beta:
  1 = transmit rate, K = receive rate).

The registry :data:`LATTICES` holds four codecs: ``lattice`` (all 2^K - 1 streams, K encoders
and the merge), ``dynamic`` (the streams a caller chooses, e.g. by :func:`choose_streams` from the
tasks' measured common parts, all made by one encoder, as the paper's Combined codec makes its
three), ``joint`` (one stream all decoders read, one encoder) and ``independent`` (K private
streams, unconditional models).

Why the dynamic codec has one encoder and no merge: with the merge, a stream of m encoders is
zero wherever their candidates disagree, and no gradient reaches them through it there. Three
freshly initialised encoders almost never agree, so a codec with only shared streams (the dynamic
codec under the "shared" and "pairwise" laws of chapter "Beyond two tasks") decodes zeros and
never learns: measured, R_t = 0 bits and chance accuracy after a 30,000-image epoch. The lattice
survives it through its private streams. For K = 2, ``lattice`` is the two-task Shared codec's
wiring (Y_12 is its Y0). Real bitstreams come from :mod:`gwnlib.model.streams`, one per stream,
and a receiver decodes only the streams it reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations

import numpy as np
import torch
from torch import nn

from gwnlib.model.codecs import WIRINGS, at_least_float32
from gwnlib.model.entropy import LatentEntropyModel, bits
from gwnlib.model.layers import analysis_transform, synthesis_transform
from gwnlib.model.ops import alignment_loss, quantize
from gwnlib.runtime import check_choice, check_int
from gwnlib.theory.entropy import entropy
from gwnlib.theory.multiterminal import check_beta, stream_prices, subsets
from gwnlib.theory.multivariate import common_part

__all__ = [
    "LATTICES",
    "LatticeCodec",
    "LatticeLoss",
    "build_lattice",
    "choose_streams",
    "merge_candidates",
    "pairwise_alignment",
    "rate_key",
    "stream_key",
]

#: The K-task codecs: full lattice, chosen streams, one common stream, K private streams.
LATTICES = ("lattice", "dynamic", "joint", "independent")


def stream_key(stream: Sequence[int]) -> str:
    """The latent's key of stream S: ``"y123"`` for (1, 2, 3), ``"y1"`` for (1,)."""
    return "y" + "".join(str(i) for i in stream)


def rate_key(stream: Sequence[int]) -> str:
    """The rate's key of stream S: ``"r123"``, ``"r1"``."""
    return "r" + "".join(str(i) for i in stream)


def check_streams(streams, K: int) -> tuple[tuple[int, ...], ...]:
    """``streams`` as sorted tuples in :func:`subsets` order, if they are distinct non-empty
    sets of tasks 1..K and every task reads at least one; else ``ValueError``."""
    if isinstance(streams, (str, bytes)) or not isinstance(streams, Sequence) or not streams:
        raise ValueError(
            f"streams must be a non-empty list of sets of tasks 1..{K}; got {streams!r}"
        )
    order = subsets(K)
    chosen = []
    for s in streams:
        s = tuple(sorted(int(i) for i in s))
        if s not in order:
            raise ValueError(f"each stream must be a non-empty set of tasks 1..{K}; got {s}")
        if s in chosen:
            raise ValueError(f"streams must be distinct; {s} appears twice")
        chosen.append(s)
    unread = [i for i in range(1, K + 1) if not any(i in s for s in chosen)]
    if unread:
        raise ValueError(f"every task must read a stream; tasks {unread} read none of {chosen}")
    return tuple(s for s in order if s in chosen)


def lattice_streams(name: str, K: int, streams=None) -> tuple[tuple[int, ...], ...]:
    """The streams of codec ``name`` (one of :data:`LATTICES`) for ``K`` tasks; ``dynamic``
    takes ``streams``, the others refuse them."""
    name = check_choice("codec", name, LATTICES)
    K = check_int("tasks", K, low=2)
    if name == "dynamic":
        if streams is None:
            raise ValueError("the dynamic codec needs streams (e.g. from choose_streams)")
        return check_streams(streams, K)
    if streams is not None:
        raise ValueError(f"streams apply to the dynamic codec only, not {name!r}")
    if name == "lattice":
        return tuple(subsets(K))
    if name == "joint":
        return (tuple(range(1, K + 1)),)
    return tuple((i,) for i in range(1, K + 1))


def merge_candidates(candidates: Sequence[torch.Tensor]) -> torch.Tensor:
    """Eq. 14 for any number of encoders: the mean of the quantised candidates where they all
    agree, else 0. With two candidates it is :func:`gwnlib.model.ops.merge_common`; with one, the
    candidate itself. Where all agree the gradient reaches every encoder (1/n each)."""
    first = candidates[0]
    if any(c.shape != first.shape for c in candidates):
        raise ValueError(f"candidates differ in shape: {[tuple(c.shape) for c in candidates]}")
    if len(candidates) == 1:
        return first
    agree = torch.stack([c == first for c in candidates[1:]]).all(0)
    mean = torch.stack(list(candidates)).mean(0)
    return torch.where(agree, mean, torch.zeros_like(first))


def pairwise_alignment(candidates: Sequence[torch.Tensor]) -> torch.Tensor:
    """Eq. 15's term summed over every pair of candidates of one stream (0 for one candidate)."""
    total = candidates[0].new_zeros(())
    for a, b in combinations(candidates, 2):
        total = total + alignment_loss(a, b)
    return total


class LatticeCodec(nn.Module):
    """A K-task Gray-Wyner codec over ``streams`` (see the module docstring); build it with
    :func:`build_lattice`.

    ``in_channels``: M; ``latent_channels``: E, the channels the busiest decoder reads (it must
    divide evenly among that decoder's streams); ``features``: channels of each decoder's output;
    ``heads``: K task heads; ``widths``, ``blocks``: the conv transforms' hidden widths and
    residual blocks (:func:`~gwnlib.model.layers.analysis_transform`).

    ``forward(x)`` returns the two-task contract with a key per stream: the latents ``y123``, ...,
    ``likelihoods``, ``rates`` (``r123``, ...), ``rate_transmit``, ``rate_receive``, the task
    outputs ``z1_hat`` ... ``zK_hat`` and ``aux``.
    """

    def __init__(
        self,
        name: str = "lattice",
        tasks: int = 3,
        in_channels: int = 3,
        latent_channels: int = 12,
        transform: str = "conv",
        features: int | None = None,
        heads: Sequence[nn.Module] | None = None,
        streams=None,
        widths: tuple[int, int, int] = (24, 48, 192),
        blocks: int = 3,
    ):
        super().__init__()
        self.name = name
        self.tasks = K = check_int("tasks", tasks, low=2)
        self.streams = lattice_streams(name, K, streams)
        self.in_channels = check_int("in_channels", in_channels)
        e = self.latent_channels = check_int("latent_channels", latent_channels)
        reads = max(len(self.reads(i)) for i in range(1, K + 1))
        if e % reads:
            raise ValueError(
                f"latent_channels must be a multiple of {reads} for codec {name!r} with streams "
                f"{list(self.streams)} (a decoder reads {reads} streams of E/{reads} channels); "
                f"got {e}"
            )
        self.width = w = e // reads
        features = in_channels if features is None else features
        conv = {"widths": widths, "blocks": blocks}
        if self.one_encoder:  # one encoder makes every stream, split in coding order
            outputs = [w * len(self.streams)]
        else:  # encoder i proposes a candidate for every stream it belongs to
            outputs = [w * len(self.written_by(i)) for i in range(1, K + 1)]
        self.encoders = nn.ModuleList(
            [analysis_transform(in_channels, out, transform, **conv) for out in outputs]
        )
        self.entropy_models = nn.ModuleDict({
            stream_key(s): LatentEntropyModel(w, w * len(self.supersets(s)) or None)
            for s in self.streams
        })  # fmt: skip
        self.decoders = nn.ModuleList(
            [
                synthesis_transform(w * len(self.reads(i)), features, transform, **conv)
                for i in range(1, K + 1)
            ]
        )
        heads = list(heads) if heads is not None else [nn.Identity() for _ in range(K)]
        if len(heads) != K:
            raise ValueError(f"heads must hold one head per task ({K}); got {len(heads)}")
        self.heads = nn.ModuleList(heads)

    # -- the wiring --------------------------------------------------------------------------
    @property
    def one_encoder(self) -> bool:
        """Whether one encoder makes every stream (Joint, dynamic) rather than K encoders whose
        candidates merge (lattice, Independent)."""
        return self.name in ("joint", "dynamic")

    def reads(self, task: int) -> tuple[tuple[int, ...], ...]:
        """The streams decoder ``task`` reads: every S holding it, in coding order."""
        return tuple(s for s in self.streams if task in s)

    written_by = reads  # encoder i proposes a candidate for exactly the streams decoder i reads

    def supersets(self, stream: Sequence[int]) -> tuple[tuple[int, ...], ...]:
        """The codec's streams that strictly contain ``stream``: what its entropy model is
        conditioned on (each is read by every receiver of ``stream``)."""
        s = set(stream)
        return tuple(t for t in self.streams if s < set(t))

    def channels_for(self, tasks: Sequence[int]) -> tuple[str, ...]:
        """The latents decoding ``tasks`` needs, in coding order."""
        tasks = tuple(tasks)
        K = self.tasks
        if not tasks or any(t not in range(1, K + 1) for t in tasks):
            raise ValueError(f"tasks must be a non-empty subset of 1..{K}; got {tasks}")
        return tuple(stream_key(s) for s in self.streams if set(s) & set(tasks))

    @property
    def rate_keys(self) -> tuple[str, ...]:
        """The rates' keys, in coding order: ``r123``, ..., ``r1``, ..."""
        return tuple(rate_key(s) for s in self.streams)

    def channel_widths(self) -> dict[str, int]:
        return {stream_key(s): self.width for s in self.streams}

    def condition(self, key: str, latents: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """What latent ``key`` is modelled and coded given: its supersets' latents, concatenated
        in coding order (None for a stream without supersets)."""
        stream = tuple(int(c) for c in key[1:])
        given = [latents[stream_key(t)] for t in self.supersets(stream)]
        return torch.cat(given, 1) if given else None

    # -- the three representations ---------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Quantised latents of ``x`` (one per stream) and the summed Eq. 15 term."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            expected = f"(B, {self.in_channels}, H, W)"
            raise ValueError(f"x must be a batch {expected} for this codec; got {tuple(x.shape)}")
        if self.one_encoder:
            latents = quantize(self.encoders[0](x)).split(self.width, dim=1)
            y = {stream_key(s): latent for s, latent in zip(self.streams, latents, strict=True)}
            return y, x.new_zeros(())
        w = self.width
        blocks: dict[tuple, list[torch.Tensor]] = {s: [] for s in self.streams}
        for i, encoder in enumerate(self.encoders, start=1):
            candidates = quantize(encoder(x)).split(w, dim=1)
            for s, candidate in zip(self.written_by(i), candidates, strict=True):
                blocks[s].append(candidate)
        y = {stream_key(s): merge_candidates(blocks[s]) for s in self.streams}
        aux = x.new_zeros(())
        for s in self.streams:
            aux = aux + pairwise_alignment(blocks[s])
        return y, aux

    def decoder_input(self, y: dict[str, torch.Tensor], task: int) -> torch.Tensor:
        """What decoder ``task`` reads: its streams' latents, concatenated in coding order."""
        return torch.cat([y[stream_key(s)] for s in self.reads(task)], 1)

    def decode(self, inputs: torch.Tensor, task: int) -> torch.Tensor:
        return self.heads[task - 1](self.decoders[task - 1](inputs))

    def likelihoods(self, y: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Elementwise likelihoods of each latent given its supersets' latents."""
        return {key: model(y[key], self.condition(key, y)) for key, model in
                self.entropy_models.items()}  # fmt: skip

    def forward(self, x: torch.Tensor) -> dict:
        y, aux = self.encode(x)
        pixels = x.shape[-2] * x.shape[-1]
        with torch.autocast(device_type=x.device.type, enabled=False):
            likelihoods = self.likelihoods({k: at_least_float32(v) for k, v in y.items()})
            rates = {"r" + k[1:]: bits(lik).mean() / pixels for k, lik in likelihoods.items()}
        out = {**y, "likelihoods": likelihoods, "rates": rates, **self.totals(rates), "aux": aux}
        for task in range(1, self.tasks + 1):
            out[f"z{task}_hat"] = self.decode(self.decoder_input(y, task), task)
        return out

    def totals(self, rates: dict) -> dict:
        """``rate_transmit`` = sum r_S and ``rate_receive`` = sum |S| r_S of per-stream rates
        keyed ``r123``, ... (numbers or tensors; absent streams cost nothing)."""
        transmit = sum(rates[k] for k in rates)
        receive = sum((len(k) - 1) * rates[k] for k in rates)
        return {"rate_transmit": transmit, "rate_receive": receive}

    # -- real entropy coding (gwnlib.model.streams) --------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """Codec names by their id in the stream header: the two-task codecs', then these."""
        return tuple(WIRINGS) + tuple(f"{n} (K tasks)" for n in LATTICES)

    @property
    def header_name(self) -> str:
        return f"{self.name} (K tasks)"

    @property
    def codec_id(self) -> int:
        return self.names.index(self.header_name)

    def update(self, force: bool = False) -> bool:
        from gwnlib.model import streams

        return streams.update(self, force=force)

    def compress(self, x: torch.Tensor) -> dict:
        """One stream per latent and per sample (:func:`gwnlib.model.streams.compress`)."""
        from gwnlib.model import streams

        return streams.compress(self, x)

    def decompress(self, strings: dict, shapes: dict | None = None, tasks=None) -> dict:
        """Decode only the streams ``tasks`` read (default: all tasks)."""
        from gwnlib.model import streams

        tasks = tuple(range(1, self.tasks + 1)) if tasks is None else tasks
        return streams.decompress(self, strings, shapes, tasks)


def build_lattice(name: str = "lattice", **config) -> LatticeCodec:
    """The K-task registry: ``build_lattice("lattice", tasks=3, in_channels=3,
    latent_channels=12)``; ``build_lattice("dynamic", streams=[(1, 2), (3,)], ...)``."""
    return LatticeCodec(name, **config)


class LatticeLoss(nn.Module):
    """Eq. 12 for K tasks: ``eta * sum_S w(S) r_S + sum_i d_i + gamma * aux``, with the prices
    w(S) of :func:`~gwnlib.theory.multiterminal.stream_prices` (beta in [1, K]: 1 prices the
    transmit rate, K the receive rate). ``distortions``: one callable per task. Returns ``loss``,
    ``rate`` (the priced sum), ``d1`` ... ``dK`` and ``aux``."""

    def __init__(self, beta: float, eta: float, gamma: float = 1.0,
                 distortions: Sequence[Callable] = ()):  # fmt: skip
        super().__init__()
        K = len(distortions)
        if K < 2:
            raise ValueError(f"distortions must hold one callable per task (K >= 2); got {K}")
        self.beta = check_beta(beta, K)
        if not eta > 0:
            raise ValueError(f"eta must be > 0; got {eta!r}")
        if not gamma >= 0:
            raise ValueError(f"gamma must be >= 0; got {gamma!r}")
        self.eta, self.gamma = float(eta), float(gamma)
        self.distortions = tuple(distortions)
        self.prices = {rate_key(s): float(w) for s, w in
                       zip(subsets(K), stream_prices(K, self.beta), strict=True)}  # fmt: skip

    def forward(self, output: dict, *targets) -> dict:
        if len(targets) != len(self.distortions):
            raise ValueError(f"expected {len(self.distortions)} targets; got {len(targets)}")
        rate = sum(self.prices[k] * r for k, r in output["rates"].items())
        terms = {"rate": rate}
        loss = self.eta * rate
        for i, (distortion, target) in enumerate(zip(self.distortions, targets, strict=True), 1):
            terms[f"d{i}"] = d = distortion(output[f"z{i}_hat"].float(), target)
            loss = loss + d
        terms["aux"] = aux = output["aux"].float()
        terms["loss"] = loss + self.gamma * aux
        return terms


def choose_streams(p, threshold: float = 0.05) -> tuple[tuple[int, ...], ...]:
    """The dynamic codec's streams for targets with joint table ``p`` (one axis per task): a
    shared stream S (|S| >= 2) when the Gács-Körner common part of the tasks in S carries more
    than ``threshold`` bits beyond the largest common part of a chosen superset, and a task's
    private stream when its entropy given the common parts it reads exceeds ``threshold`` (or
    when it would read no stream at all).

    The common part of S is what every task of S can compute from its own target alone, so a
    stream for it is one no receiver of S pays for twice (chapter "Beyond two tasks"). What the
    rule cannot see: a synergy (tasks pairwise independent, jointly dependent) has no common
    part, so it gets no shared stream. ``p`` is usually the empirical table of the training
    targets.
    """
    p = np.asarray(p, dtype=np.float64)
    K = p.ndim
    if K < 2:
        raise ValueError(f"p must have one axis per task, at least two; got {p.ndim}")
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0 bits; got {threshold!r}")
    chosen: list[tuple[int, ...]] = []
    value: dict[tuple[int, ...], float] = {}
    labels: dict[tuple[int, ...], np.ndarray] = {}
    for s in subsets(K):
        if len(s) < 2:
            continue
        part = common_part(p, s)
        value[s] = part.value
        above = max((value[t] for t in chosen if set(s) < set(t)), default=0.0)
        if part.value - above > threshold:
            chosen.append(s)
            labels[s] = part
    for i in range(1, K + 1):
        p_i = p.sum(axis=tuple(a for a in range(K) if a != i - 1))
        # Every common part task i reads is a function of T_i: H(T_i | parts) = H(T_i) - H(parts).
        codes = np.stack([labels[s].functions[s.index(i)] for s in chosen if i in s] or
                         [np.zeros(len(p_i), dtype=np.int64)], 1)  # fmt: skip
        _, group = np.unique(codes, axis=0, return_inverse=True)
        h = entropy(p_i) - entropy(np.bincount(group.ravel(), weights=p_i))
        if h > threshold or not any(i in s for s in chosen):  # a decoder reads something
            chosen.append((i,))
    return check_streams(chosen, K)
