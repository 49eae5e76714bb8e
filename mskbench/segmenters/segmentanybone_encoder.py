"""SegmentAnyBone's image encoder: MobileSAM's TinyViT with bottleneck adapters, parameter names as released.

SegmentAnyBone's released ``bone_sam.pth`` is built by upstream's
``sam_model_registry["vit_t"]`` (demo.ipynb), i.e. the TinyViT encoder of
MobileSAM, not a ViT-B. Written from a reading of
mazurowski-lab/SegmentAnyBone ``models/sam/modeling/tiny_vit_sam.py``
(``Conv2d_BN``, ``PatchEmbed``, ``MBConv``, ``PatchMerging``, ``ConvLayer``,
``Mlp``, ``Attention``, ``TinyViTBlock``, ``BasicLayer``, ``TinyViT``),
``models/sam/.ipynb_checkpoints/build_sam-checkpoint.py`` (``build_sam_vit_t``)
and ``cfg.py`` (adapter switches); the ``Adapter`` bottleneck is the
Medical-SAM-Adapter one that the finetune-SAM lineage's ``common.py`` defines
(``D_fc1``: dim -> dim/4, GELU, ``D_fc2``: dim/4 -> dim). Module attribute
names are upstream's because they are the checkpoint's keys.

Where the adapters sit: upstream gives each attention block the index of its
stage minus one and adds adapters where that index is in
``encoder_adapter_depths`` = [0, 1, 10, 11]; with four stages that is every
block of stages 1 and 2 (:attr:`EncoderConfig.adapter_stages`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: the scale upstream gives the MLP adapter's output, added beside the block's MLP
ADAPTER_SCALE = 0.5


@dataclass(frozen=True)
class EncoderConfig:
    """TinyViT's shape; :data:`MOBILE_SAM_ENCODER` is the released one."""

    embed_dims: tuple[int, ...] = (64, 128, 160, 320)
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (2, 4, 5, 10)
    window_sizes: tuple[int, ...] = (7, 7, 14, 7)
    adapter_stages: tuple[int, ...] = (1, 2)
    out_chans: int = 256
    num_classes: int = 1000  # the unused ImageNet head is still in the checkpoint
    img_size: int = 1024
    mlp_ratio: float = 4.0
    mbconv_expand_ratio: float = 4.0
    local_conv_size: int = 3


MOBILE_SAM_ENCODER = EncoderConfig()


class Adapter(nn.Module):
    """Bottleneck MLP (dim -> dim/4 -> dim); with ``skip_connect`` its input is added back."""

    def __init__(self, dim: int, skip_connect: bool = True, ratio: float = 0.25) -> None:
        super().__init__()
        self.skip_connect = skip_connect
        self.act = nn.GELU()
        self.D_fc1 = nn.Linear(dim, int(dim * ratio))
        self.D_fc2 = nn.Linear(int(dim * ratio), dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.D_fc2(self.act(self.D_fc1(x)))
        return x + out if self.skip_connect else out


class Conv2dBN(nn.Sequential):
    """A bias-free convolution then batch norm, keys ``c`` and ``bn``."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, pad: int = 0, groups: int = 1) -> None:
        super().__init__()
        self.add_module("c", nn.Conv2d(cin, cout, kernel, stride, pad, groups=groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(cout))


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of an NCHW map (SAM's neck)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        return self.weight[:, None, None] * (x - mean) / torch.sqrt(var + self.eps) + self.bias[:, None, None]


class PatchEmbed(nn.Module):
    """Two stride-2 3x3 convolutions: the image at a quarter of its size."""

    def __init__(self, in_chans: int, dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(Conv2dBN(in_chans, dim // 2, 3, 2, 1), nn.GELU(), Conv2dBN(dim // 2, dim, 3, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


class MBConv(nn.Module):
    """Inverted residual: expand 1x1, depthwise 3x3, project 1x1, add the input, GELU."""

    def __init__(self, dim: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * expand_ratio)
        self.conv1 = Conv2dBN(dim, hidden)
        self.conv2 = Conv2dBN(hidden, hidden, 3, 1, 1, groups=hidden)
        self.conv3 = Conv2dBN(hidden, dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.conv2(self.act(self.conv1(x))))
        return self.act(self.conv3(y) + x)


class PatchMerging(nn.Module):
    """Tokens (or an NCHW map) to the next stage's width; ``stride`` 1 keeps the resolution."""

    def __init__(self, resolution: tuple[int, int], dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.conv1 = Conv2dBN(dim, out_dim)
        self.conv2 = Conv2dBN(out_dim, out_dim, 3, stride, 1, groups=out_dim)
        self.conv3 = Conv2dBN(out_dim, out_dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            height, width = self.resolution
            x = x.view(len(x), height, width, -1).permute(0, 3, 1, 2)
        x = self.conv3(self.act(self.conv2(self.act(self.conv1(x)))))
        return x.flatten(2).transpose(1, 2)


class Mlp(nn.Module):
    """LayerNorm then a two-layer GELU MLP."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


def attention_bias_index(window: int) -> torch.Tensor:
    """(N, N) index of the learned bias for each token pair of a window: by |dy|, |dx|.

    Upstream numbers the offsets in the order it first meets them, scanning
    pairs from token (0, 0); that order is ``|dy| * window + |dx|``.
    """
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    delta = (coords[:, :, None] - coords[:, None, :]).abs()
    return delta[0] * window + delta[1]


class Attention(nn.Module):
    """Windowed multi-head attention with a learned bias per relative offset (TinyViT, key dim = head dim)."""

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.num_heads, self.key_dim = num_heads, dim // num_heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window * window))
        self.register_buffer("attention_bias_idxs", attention_bias_index(window), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = x.shape
        # per head [q | k | v], as the checkpoint's qkv rows are laid out
        q, k, v = self.qkv(self.norm(x)).view(batch, tokens, self.num_heads, -1).split(self.key_dim, dim=3)
        q, k, v = (t.permute(0, 2, 1, 3) for t in (q, k, v))
        bias = self.attention_biases[:, self.attention_bias_idxs]
        attn = ((q @ k.transpose(-2, -1)) * self.key_dim ** -0.5 + bias).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(batch, tokens, -1))


class TinyViTBlock(nn.Module):
    """Window attention, depthwise conv, MLP; with adapters a skip adapter after attention and a
    scaled MLP adapter beside the MLP."""

    def __init__(self, dim: int, resolution: tuple[int, int], num_heads: int, window: int, mlp_ratio: float,
                 local_conv_size: int, adapter: bool) -> None:
        super().__init__()
        self.resolution, self.window = resolution, window
        self.attn = Attention(dim, num_heads, window)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.local_conv = Conv2dBN(dim, dim, local_conv_size, 1, local_conv_size // 2, groups=dim)
        self.adapter = adapter
        if adapter:
            self.MLP_Adapter = Adapter(dim, skip_connect=False)
            self.Space_Adapter = Adapter(dim)

    def _window_attention(self, x: torch.Tensor) -> torch.Tensor:
        height, width = self.resolution
        batch, tokens, dim = x.shape
        win = self.window
        if height == win and width == win:
            return self.attn(x)
        grid = F.pad(x.view(batch, height, width, dim), (0, 0, 0, (-width) % win, 0, (-height) % win))
        ph, pw = grid.shape[1] // win, grid.shape[2] // win
        windows = grid.view(batch, ph, win, pw, win, dim).transpose(2, 3).reshape(batch * ph * pw, win * win, dim)
        grid = self.attn(windows).view(batch, ph, pw, win, win, dim).transpose(2, 3).reshape(batch, ph * win, pw * win, dim)
        return grid[:, :height, :width].reshape(batch, tokens, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = self.resolution
        batch, tokens, dim = x.shape
        attended = self._window_attention(x)
        if self.adapter:
            attended = self.Space_Adapter(attended)
        x = x + attended
        x = self.local_conv(x.transpose(1, 2).reshape(batch, dim, height, width)).view(batch, dim, tokens).transpose(1, 2)
        if self.adapter:
            return x + self.mlp(x) + ADAPTER_SCALE * self.MLP_Adapter(x)
        return x + self.mlp(x)


class Stage(nn.Module):
    """One TinyViT stage: ``blocks`` then an optional ``downsample`` (upstream ConvLayer / BasicLayer)."""

    def __init__(self, blocks: list[nn.Module], downsample: nn.Module | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x if self.downsample is None else self.downsample(x)


class TinyViTEncoder(nn.Module):
    """Image (N, 3, 1024, 1024) to embedding (N, out_chans, 64, 64).

    Stage i works at (img_size / 4) / 2**i pixels, except that the last
    stage keeps the resolution of the one before (upstream merges into the
    last stage with stride 1), so the embedding is img_size / 16 wide.
    """

    def __init__(self, config: EncoderConfig = MOBILE_SAM_ENCODER) -> None:
        super().__init__()
        self.img_size = config.img_size
        dims, stages = config.embed_dims, len(config.depths)
        base = config.img_size // 4
        self.grid = base // 2 ** (stages - 2)
        self.patch_embed = PatchEmbed(3, dims[0])
        self.layers = nn.ModuleList()
        for i in range(stages):
            side = base // 2 ** min(i, stages - 2)
            downsample = None
            if i < stages - 1:
                stride = 1 if i + 1 == stages - 1 else 2
                downsample = PatchMerging((side, side), dims[i], dims[i + 1], stride)
            if i == 0:
                blocks = [MBConv(dims[0], config.mbconv_expand_ratio) for _ in range(config.depths[0])]
            else:
                blocks = [
                    TinyViTBlock(dims[i], (side, side), config.num_heads[i], config.window_sizes[i], config.mlp_ratio,
                                 config.local_conv_size, adapter=i in config.adapter_stages)
                    for _ in range(config.depths[i])
                ]
            self.layers.append(Stage(blocks, downsample))
        self.norm_head = nn.LayerNorm(dims[-1])
        self.head = nn.Linear(dims[-1], config.num_classes)
        self.neck = nn.Sequential(
            nn.Conv2d(dims[-1], config.out_chans, 1, bias=False), LayerNorm2d(config.out_chans),
            nn.Conv2d(config.out_chans, config.out_chans, 3, padding=1, bias=False), LayerNorm2d(config.out_chans),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.neck(x.view(len(x), self.grid, self.grid, -1).permute(0, 3, 1, 2))
