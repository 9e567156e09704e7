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

The three-channel codecs model Y0 autoregressively and Y1, Y2 conditionally on Y0; the one- and
two-channel codecs use the Y0-type model for every latent (paper D.1). Task heads are pluggable:
``heads=(head1, head2)`` map each decoder's features to its task's prediction.
"""

from __future__ import annotations

import torch
from torch import nn

from gwnlib.entropy import LatentEntropyModel, bits
from gwnlib.nn import (
    alignment_loss,
    analysis_transform,
    merge_common,
    quantize,
    synthesis_transform,
)

CODECS = ("shared", "separated", "combined", "joint", "independent")
#: Codecs that split E into halves (Y0 and a private channel of E/2 each), so E must be even.
THREE_CHANNEL = ("shared", "separated", "combined")


class GrayWynerCodec(nn.Module):
    """One of :data:`CODECS`; build it with :func:`build`.

    ``in_channels``: input channels M (2 for the synthetic source, 3 for images);
    ``latent_channels``: E, the width each decoder reads; ``features``: channels of each decoder's
    output, which its head turns into a prediction; ``transform``: ``"conv"`` or ``"shuffle"``.
    """

    def __init__(
        self,
        name: str,
        in_channels: int,
        latent_channels: int,
        transform: str = "conv",
        features: int | None = None,
        heads: tuple[nn.Module, nn.Module] | None = None,
    ):
        super().__init__()
        if name not in CODECS:
            raise ValueError(f"codec must be one of {', '.join(CODECS)}; got {name!r}")
        if name in THREE_CHANNEL and latent_channels % 2:
            raise ValueError(
                f"latent_channels must be even for codec {name!r} (it splits E into E/2 common "
                f"and E/2 private channels); got {latent_channels}"
            )
        self.name = name
        self.in_channels = in_channels
        self.latent_channels = e = latent_channels
        features = in_channels if features is None else features
        half = e // 2
        if name == "shared":
            self.encoders = nn.ModuleList(
                [analysis_transform(in_channels, e, transform) for _ in range(2)]
            )
        elif name == "separated":
            self.encoders = nn.ModuleList(
                [analysis_transform(in_channels, half, transform) for _ in range(3)]
            )
        elif name == "combined":
            self.encoders = nn.ModuleList([analysis_transform(in_channels, 3 * half, transform)])
        elif name == "joint":
            self.encoders = nn.ModuleList([analysis_transform(in_channels, e, transform)])
        else:
            self.encoders = nn.ModuleList(
                [analysis_transform(in_channels, e, transform) for _ in range(2)]
            )
        if name in THREE_CHANNEL:
            self.entropy_models = nn.ModuleDict(
                {
                    "y0": LatentEntropyModel(half),
                    "y1": LatentEntropyModel(half, condition_channels=half),
                    "y2": LatentEntropyModel(half, condition_channels=half),
                }
            )
        elif name == "joint":
            self.entropy_models = nn.ModuleDict({"y0": LatentEntropyModel(e)})
        else:
            self.entropy_models = nn.ModuleDict(
                {"y1": LatentEntropyModel(e), "y2": LatentEntropyModel(e)}
            )
        self.decoders = nn.ModuleList(
            [synthesis_transform(e, features, transform) for _ in range(2)]
        )
        heads = heads if heads is not None else (nn.Identity(), nn.Identity())
        if len(heads) != 2:
            raise ValueError(f"heads must be a pair (head1, head2); got {len(heads)}")
        self.heads = nn.ModuleList(heads)

    # -- the three representations ----------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Quantised latents of ``x`` (a dict over the codec's channels) and the Eq. 15 term."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            expected = f"(B, {self.in_channels}, H, W)"
            raise ValueError(f"x must be a batch {expected} for this codec; got {tuple(x.shape)}")
        aux = x.new_zeros(())
        half = self.latent_channels // 2
        if self.name == "shared":
            a, b = (quantize(f(x)) for f in self.encoders)
            y = {"y0": merge_common(a[:, :half], b[:, :half]), "y1": a[:, half:], "y2": b[:, half:]}
            aux = alignment_loss(a[:, :half], b[:, :half])
        elif self.name == "separated":
            y = {
                key: quantize(f(x))
                for key, f in zip(("y0", "y1", "y2"), self.encoders, strict=True)
            }
        elif self.name == "combined":
            y0, y1, y2 = quantize(self.encoders[0](x)).split(half, dim=1)
            y = {"y0": y0, "y1": y1, "y2": y2}
        elif self.name == "joint":
            y = {"y0": quantize(self.encoders[0](x))}
        else:
            y = {"y1": quantize(self.encoders[0](x)), "y2": quantize(self.encoders[1](x))}
        return y, aux

    def decoder_input(self, y: dict[str, torch.Tensor], task: int) -> torch.Tensor:
        """What decoder ``task`` reads: (Y0, Y_task), or Y0 (Joint), or Y_task (Independent).

        ``y`` needs only the latents that task reads, so a receiver's partial decode can call it.
        """
        if self.name in THREE_CHANNEL:
            return torch.cat([y["y0"], y[f"y{task}"]], 1)
        if self.name == "joint":
            return y["y0"]
        return y[f"y{task}"]

    def decode(self, inputs: torch.Tensor, task: int) -> torch.Tensor:
        """Task ``task`` (1 or 2): synthesis transform then head."""
        return self.heads[task - 1](self.decoders[task - 1](inputs))

    def likelihoods(self, y: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Elementwise likelihoods of each latent; Y1 and Y2 given Y0 when the codec has Y0."""
        condition = y.get("y0") if self.name in THREE_CHANNEL else None
        return {
            key: model(y[key], None if key == "y0" else condition)
            for key, model in self.entropy_models.items()
        }

    def forward(self, x: torch.Tensor) -> dict:
        y, aux = self.encode(x)
        # Rates stay in float32 under mixed precision: the entropy models see float32 integers.
        with torch.autocast(device_type=x.device.type, enabled=False):
            likelihoods = self.likelihoods({key: _at_least_float32(v) for key, v in y.items()})
            pixels = x.shape[-2] * x.shape[-1]
            rates = {f"r{key[1]}": bits(lik).mean() / pixels for key, lik in likelihoods.items()}
        zero = _at_least_float32(x.new_zeros(()))
        r0, r1, r2 = (rates.get(k, zero) for k in ("r0", "r1", "r2"))
        return {
            **y,
            "likelihoods": likelihoods,
            "rates": rates,
            "rate_transmit": r0 + r1 + r2,
            "rate_receive": 2 * r0 + r1 + r2,
            "z1_hat": self.decode(self.decoder_input(y, 1), 1),
            "z2_hat": self.decode(self.decoder_input(y, 2), 2),
            "aux": aux,
        }

    # -- real entropy coding (gwnlib.coding) --------------------------------------------------
    def update(self, force: bool = False) -> bool:
        """Build the integer CDF tables and the CPU view of the entropy models for
        :meth:`compress` / :meth:`decompress` (CompressAI's ``update()``). Optional: both build
        them lazily and rebuild them when the weights changed (see :mod:`gwnlib.coding`).
        Returns whether anything was rebuilt."""
        from gwnlib import coding

        return coding.update(self, force=force)

    def compress(self, x: torch.Tensor) -> dict:
        """Entropy-code ``x`` to bytes: ``{"strings": {key: [bytes per sample]}, "shapes":
        {key: (C, H, W)}}`` over the codec's channels (:func:`gwnlib.coding.compress`)."""
        from gwnlib import coding

        return coding.compress(self, x)

    def decompress(self, strings: dict, shapes: dict | None = None, tasks=(1, 2)) -> dict:
        """Decode only the streams ``tasks`` need; the latents and ``z{t}_hat`` per task
        (:func:`gwnlib.coding.decompress`). Bad streams raise ``ValueError``."""
        from gwnlib import coding

        return coding.decompress(self, strings, shapes, tasks)


def _at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in float32 when it is in a lower precision (bfloat16/float16 autocast)."""
    return tensor.float() if tensor.dtype in (torch.bfloat16, torch.float16) else tensor


def build(name: str, **config) -> GrayWynerCodec:
    """The registry: ``build("shared", in_channels=2, latent_channels=512, transform="shuffle")``.

    Unknown names, an odd E for a splitting codec, and inputs with the wrong number of channels
    (at the first forward) fail with messages that name the parameter.
    """
    return GrayWynerCodec(name, **config)
