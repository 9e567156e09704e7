"""The learnable Gray-Wyner network and its four baselines (paper Sec. 3.3 and 4.1, Fig. 2 and 8).

All five share one contract, CompressAI's extended to three channels. ``forward(x)`` returns a
dict with the quantised latents that the codec has (``y0``, ``y1``, ``y2``; absent channels are
absent, not zeros), their ``likelihoods``, per-channel ``rates`` in bits per input pixel (averaged
over the batch), ``rate_transmit`` = R0 + R1 + R2 and ``rate_receive`` = 2 R0 + R1 + R2, the task
outputs ``z1_hat`` and ``z2_hat``, and ``aux`` (the Eq. 15 alignment term; zero where there is no
merge).

- ``shared`` (the paper's proposal): two encoders, each sees the whole input and outputs E
  channels; channels [:E/2] are a common candidate, [E/2:] private. The candidates merge into Y0
  (Eq. 14); decoder i reads (Y0, Y_i).
- ``separated``: three encoders of E/2 channels (common, private 1, private 2).
- ``combined``: one encoder of 3E/2 channels, split three ways.
- ``joint``: one encoder, one latent Y0 of E channels; both decoders read it.
- ``independent``: two encoders of E channels with unconditional entropy models; decoder i reads
  Y_i only.

Not in the paper: ``distributed`` (chapter "Two sources"), the Shared codec whose encoder i sees
only view i of a two-view input.

The three-channel codecs model Y0 autoregressively and Y1, Y2 conditionally on Y0; the one- and
two-channel codecs use the Y0-type model for every latent (paper D.1). Task heads are pluggable:
``heads=(head1, head2)`` map each decoder's features to its task's prediction.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gwnlib.model.entropy import LatentEntropyModel, bits
from gwnlib.model.layers import analysis_transform, synthesis_transform
from gwnlib.model.ops import alignment_loss, merge_common, quantize, receive_rate, transmit_rate

#: The latents in coding order: Y0 first, since Y1 and Y2 are modelled and coded given it.
CHANNELS = ("y0", "y1", "y2")


class Wiring:
    """How one codec makes its latents from the input and which latents each decoder reads
    (paper Fig. 2 and 8). A codec is :class:`GrayWynerCodec` plus one registered wiring: adding
    a codec is one subclass with :func:`register` here, and nothing else (the stream format
    gives each registered name, in order, its codec id)."""

    name: str
    #: The latents it makes, in :data:`CHANNELS` order.
    channels: tuple[str, ...]

    def encoders(self, m: int, e: int, transform: str, **layers) -> list[nn.Module]:
        """The analysis transforms for M input channels and E latent channels per decoder;
        ``layers``: the transforms' ``widths`` and ``blocks`` when not the paper's."""
        raise NotImplementedError

    def latents(self, encoders, x: torch.Tensor, e: int) -> tuple[dict, torch.Tensor | None]:
        """The quantised latents of ``x`` and the Eq. 15 term (None where nothing merges)."""
        raise NotImplementedError

    def reads(self, task: int) -> tuple[str, ...]:
        """The latents decoder ``task`` (1 or 2) reads: (Y0, Y_task) for the three-channel
        codecs."""
        return ("y0", f"y{task}")

    @property
    def three_channel(self) -> bool:
        """Whether the codec makes all of Y0, Y1 and Y2: then E splits into E/2 channels each,
        and Y1 and Y2 are modelled given Y0 (r_i = -log2 P(Y_i | Y0), Eq. 11)."""
        return len(self.channels) == 3

    def widths(self, e: int) -> dict[str, int]:
        """Channels of each latent: E/2 each when there are three, else E."""
        width = e // 2 if self.three_channel else e
        return {key: width for key in self.channels}


WIRINGS: dict[str, Wiring] = {}


def register(cls: type[Wiring]) -> type[Wiring]:
    """Class decorator: make ``cls`` buildable by its ``name``."""
    WIRINGS[cls.name] = cls()
    return cls


@register
class Shared(Wiring):
    """The paper's proposal (Sec. 3.3): two encoders each see the whole input and output E
    channels, [:E/2] a common candidate and [E/2:] private; the candidates merge into Y0
    (Eq. 14) and the alignment term of Eq. 15 pulls them together."""

    name, channels = "shared", CHANNELS

    def encoders(self, m, e, transform, **layers):
        return [analysis_transform(m, e, transform, **layers) for _ in range(2)]

    def candidates(self, encoders, x) -> tuple[torch.Tensor, torch.Tensor]:
        """The two encoders' quantised outputs, common candidate first in each."""
        a, b = (quantize(f(x)) for f in encoders)
        return a, b

    def latents(self, encoders, x, e):
        half = e // 2
        a, b = self.candidates(encoders, x)
        y = {"y0": merge_common(a[:, :half], b[:, :half]), "y1": a[:, half:], "y2": b[:, half:]}
        return y, alignment_loss(a[:, :half], b[:, :half])


@register
class Separated(Wiring):
    """Three encoders of E/2 channels: common, private 1, private 2 (Fig. 8)."""

    name, channels = "separated", CHANNELS

    def encoders(self, m, e, transform, **layers):
        return [analysis_transform(m, e // 2, transform, **layers) for _ in range(3)]

    def latents(self, encoders, x, e):
        return {key: quantize(f(x)) for key, f in zip(CHANNELS, encoders, strict=True)}, None


@register
class Combined(Wiring):
    """One encoder of 3E/2 channels, split into Y0, Y1, Y2 (Fig. 8)."""

    name, channels = "combined", CHANNELS

    def encoders(self, m, e, transform, **layers):
        return [analysis_transform(m, 3 * (e // 2), transform, **layers)]

    def latents(self, encoders, x, e):
        return dict(zip(CHANNELS, quantize(encoders[0](x)).split(e // 2, dim=1), strict=True)), None


@register
class Joint(Wiring):
    """One encoder, one latent Y0 of E channels that both decoders read (Fig. 8)."""

    name, channels = "joint", ("y0",)

    def encoders(self, m, e, transform, **layers):
        return [analysis_transform(m, e, transform, **layers)]

    def latents(self, encoders, x, e):
        return {"y0": quantize(encoders[0](x))}, None

    def reads(self, task):
        return ("y0",)


@register
class Independent(Wiring):
    """Two encoders of E channels with unconditional entropy models; decoder i reads Y_i
    only (Fig. 8)."""

    name, channels = "independent", ("y1", "y2")

    def encoders(self, m, e, transform, **layers):
        return [analysis_transform(m, e, transform, **layers) for _ in range(2)]

    def latents(self, encoders, x, e):
        return {"y1": quantize(encoders[0](x)), "y2": quantize(encoders[1](x))}, None

    def reads(self, task):
        return (f"y{task}",)


#: The paper's five codecs (Fig. 2 and 8), in the order that numbers them in stream headers.
CODECS = tuple(WIRINGS)


@register
class Distributed(Shared):
    """Not in the paper (chapter "Two sources"): the Shared codec for two physical sources with
    *distributed* encoders. The input stacks two views on its channels; encoder i sees only
    view i (channels [(i - 1) M/2, i M/2)) and proposes its common candidate from it, so Y0 is
    what the two views let both encoders agree on (Eq. 14), pulled together by Eq. 15. Every
    other codec is *centralised*: each encoder sees both views.

    Only the analysis transforms are distributed: the merge, and coding Y1 and Y2 given the
    merged Y0, need a node that sees both candidates. Where the candidates agree, Y0 is what
    either encoder alone would write; where they disagree, the merge's 0 depends on both views,
    and a trained merge could carry joint information through it
    (:func:`gwnlib.analysis.probes.merge_agreement` measures how often they agree)."""

    name = "distributed"

    def encoders(self, m, e, transform, **layers):
        return [analysis_transform(m // 2, e, transform, **layers) for _ in range(2)]

    def candidates(self, encoders, x):
        a, b = (quantize(f(view)) for f, view in zip(encoders, x.chunk(2, dim=1), strict=True))
        return a, b


#: Codecs whose encoders each see one half of the input's channels, a view of its own.
DISTRIBUTED = ("distributed",)
#: The paper's codecs that split E into halves (Y0 and a private channel of E/2 each), so E must
#: be even; the distributed codec splits E too (it is the Shared codec on two views).
THREE_CHANNEL = tuple(name for name in CODECS if WIRINGS[name].three_channel)


def channels_for(name: str, tasks: Sequence[int]) -> tuple[str, ...]:
    """Latents that decoding ``tasks`` needs with codec ``name``, in coding order: task i reads
    (Y0, Yi), or Y0 (Joint), or Yi (Independent)."""
    tasks = tuple(tasks)
    if not tasks or any(t not in (1, 2) for t in tasks):
        raise ValueError(f"tasks must be a non-empty subset of (1, 2); got {tasks}")
    needed = {key for task in tasks for key in _wiring(name).reads(task)}
    return tuple(key for key in CHANNELS if key in needed)


def _wiring(name: str) -> Wiring:
    if name not in WIRINGS:
        raise ValueError(f"codec must be one of {', '.join(WIRINGS)}; got {name!r}")
    return WIRINGS[name]


class GrayWynerCodec(nn.Module):
    """One of :data:`CODECS`; build it with :func:`build`.

    ``in_channels``: input channels M (2 for the synthetic source, 3 for images);
    ``latent_channels``: E, the width each decoder reads; ``features``: channels of each decoder's
    output, which its head turns into a prediction; ``transform``: ``"conv"`` or ``"shuffle"``.
    What differs between the codecs is their :class:`Wiring`; the entropy models, decoders and
    heads are the same for all (paper D.1).
    """

    def __init__(
        self,
        name: str,
        in_channels: int,
        latent_channels: int,
        transform: str = "conv",
        features: int | None = None,
        heads: tuple[nn.Module, nn.Module] | None = None,
        widths: tuple[int, int, int] | None = None,
        blocks: int | None = None,
    ):
        super().__init__()
        self.wiring = _wiring(name)
        if self.wiring.three_channel and latent_channels % 2:
            raise ValueError(
                f"latent_channels must be even for codec {name!r} (it splits E into E/2 common "
                f"and E/2 private channels); got {latent_channels}"
            )
        if name in DISTRIBUTED and in_channels % 2:
            raise ValueError(
                f"in_channels must be even for codec {name!r} (two views of M/2 channels, one "
                f"per encoder); got {in_channels}"
            )
        self.name = name
        self.in_channels = in_channels
        self.latent_channels = e = latent_channels
        features = in_channels if features is None else features
        layers = {k: v for k, v in (("widths", widths), ("blocks", blocks)) if v is not None}
        self.encoders = nn.ModuleList(self.wiring.encoders(in_channels, e, transform, **layers))
        widths = self.wiring.widths(e)
        condition = widths["y0"] if self.wiring.three_channel else None
        self.entropy_models = nn.ModuleDict({
            key: LatentEntropyModel(width, None if key == "y0" else condition)
            for key, width in widths.items()
        })  # fmt: skip
        self.decoders = nn.ModuleList(
            [synthesis_transform(e, features, transform, **layers) for _ in range(2)]
        )
        heads = heads if heads is not None else (nn.Identity(), nn.Identity())
        if len(heads) != 2:
            raise ValueError(f"heads must be a pair (head1, head2); got {len(heads)}")
        self.heads = nn.ModuleList(heads)

    @property
    def names(self) -> tuple[str, ...]:
        """Every registered codec's name, by its id in the stream header: the paper's five
        (:data:`CODECS`), then any registered later, in order."""
        return tuple(WIRINGS)

    @property
    def codec_id(self) -> int:
        """The codec's number in the stream header: its index in :attr:`names`."""
        return self.names.index(self.name)

    def channel_widths(self) -> dict[str, int]:
        """Channels of each latent the codec makes (E/2 each for three latents, else E)."""
        return self.wiring.widths(self.latent_channels)

    def channels_for(self, tasks: Sequence[int]) -> tuple[str, ...]:
        """The latents decoding ``tasks`` needs (:func:`channels_for`)."""
        return channels_for(self.name, tasks)

    # -- the three representations ----------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Quantised latents of ``x`` (a dict over the codec's channels) and the Eq. 15 term."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            expected = f"(B, {self.in_channels}, H, W)"
            raise ValueError(f"x must be a batch {expected} for this codec; got {tuple(x.shape)}")
        y, aux = self.wiring.latents(self.encoders, x, self.latent_channels)
        return y, x.new_zeros(()) if aux is None else aux

    def decoder_input(self, y: dict[str, torch.Tensor], task: int) -> torch.Tensor:
        """What decoder ``task`` reads: (Y0, Y_task), or Y0 (Joint), or Y_task (Independent).

        ``y`` needs only the latents that task reads, so a receiver's partial decode can call it.
        """
        keys = self.wiring.reads(task)
        return y[keys[0]] if len(keys) == 1 else torch.cat([y[key] for key in keys], 1)

    def decode(self, inputs: torch.Tensor, task: int) -> torch.Tensor:
        """Task ``task`` (1 or 2): synthesis transform then head."""
        return self.heads[task - 1](self.decoders[task - 1](inputs))

    def condition(self, key: str, latents: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """What latent ``key`` is modelled and coded given: Y0 for Y1 and Y2 of the
        three-channel codecs, else nothing."""
        return latents["y0"] if self.wiring.three_channel and key != "y0" else None

    def likelihoods(self, y: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Elementwise likelihoods of each latent; Y1 and Y2 given Y0 when the codec has Y0."""
        return {key: model(y[key], self.condition(key, y)) for key, model in
                self.entropy_models.items()}  # fmt: skip

    def forward(self, x: torch.Tensor) -> dict:
        y, aux = self.encode(x)
        pixels = x.shape[-2] * x.shape[-1]
        out = self.rate_terms(x, y, lambda likelihood: bits(likelihood).mean() / pixels)
        out["z1_hat"] = self.decode(self.decoder_input(y, 1), 1)
        out["z2_hat"] = self.decode(self.decoder_input(y, 2), 2)
        out["aux"] = aux
        return out

    def rate_terms(self, x: torch.Tensor, y: dict, per_pixel) -> dict:
        """The latents ``y`` of ``x``, their ``likelihoods``, the ``rates`` r0, r1, r2 (Eq. 11;
        ``per_pixel(likelihoods)``: bits per input pixel) and R_t, R_r (Sec. 2.1): the part of
        the forward contract that every codec, an image codec too, computes the same way."""
        # Rates stay in float32 under mixed precision: the entropy models see float32 integers.
        with torch.autocast(device_type=x.device.type, enabled=False):
            likelihoods = self.likelihoods({key: at_least_float32(v) for key, v in y.items()})
            rates = {f"r{key[1]}": per_pixel(lik) for key, lik in likelihoods.items()}
        zero = at_least_float32(x.new_zeros(()))
        r0, r1, r2 = (rates.get(k, zero) for k in ("r0", "r1", "r2"))
        return {
            **y,
            "likelihoods": likelihoods,
            "rates": rates,
            "rate_transmit": transmit_rate(r0, r1, r2),
            "rate_receive": receive_rate(r0, r1, r2),
        }

    # -- real entropy coding (gwnlib.model.streams) ------------------------------------------
    def update(self, force: bool = False) -> bool:
        """Build the integer CDF tables and the CPU view of the entropy models for
        :meth:`compress` / :meth:`decompress` (CompressAI's ``update()``). Optional: both build
        them lazily and rebuild them when the weights changed (see :mod:`gwnlib.model.streams`).
        Returns whether anything was rebuilt."""
        from gwnlib.model import streams

        return streams.update(self, force=force)

    def compress(self, x: torch.Tensor) -> dict:
        """Entropy-code ``x`` to bytes: ``{"strings": {key: [bytes per sample]}, "shapes":
        {key: (C, H, W)}}`` over the codec's channels (:func:`gwnlib.model.streams.compress`)."""
        from gwnlib.model import streams

        return streams.compress(self, x)

    def decompress(self, strings: dict, shapes: dict | None = None, tasks=(1, 2)) -> dict:
        """Decode only the streams ``tasks`` need; the latents and ``z{t}_hat`` per task
        (:func:`gwnlib.model.streams.decompress`). Bad streams raise ``ValueError``."""
        from gwnlib.model import streams

        return streams.decompress(self, strings, shapes, tasks)


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in float32 when it is in a lower precision (bfloat16/float16 autocast)."""
    return tensor.float() if tensor.dtype in (torch.bfloat16, torch.float16) else tensor


def build(name: str, **config) -> GrayWynerCodec:
    """The registry: ``build("shared", in_channels=2, latent_channels=512, transform="shuffle")``.

    Unknown names, an odd E for a splitting codec, and inputs with the wrong number of channels
    (at the first forward) fail with messages that name the parameter.
    """
    return GrayWynerCodec(name, **config)
