"""ResNet encoders from timm: dilated feature maps for dense prediction, pooled vectors for classification.

The paper's code (LibMTL) builds torchvision's ResNets with torchvision's original ImageNet weights
(``resnet50-19c8e357.pth``, ``resnet18-5c106cde.pth``; LibMTL/model/resnet.py@3928656). timm names those
weights ``resnet50.tv_in1k`` / ``resnet18.tv_in1k`` (torchvision's IMAGENET1K_V1); a bare ``resnet50`` means
timm's own ``a1_in1k`` weights, a different starting point. The architecture is the same for every tag.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from timm.models.resnet import BasicBlock, Bottleneck
from torch import Tensor, nn


def pooled_tail(channels: int, hidden: int | None, dropout: float) -> nn.Sequential:
    """Global average pooling to a vector, then (``hidden``) LibMTL's Office encoder layer: Linear(C, hidden)
    initialised N(0, 0.005²) with bias 0.1, BatchNorm1d, ReLU, Dropout (examples/office/train_office.py
    @3928656)."""
    layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if hidden is not None:
        linear = nn.Linear(channels, hidden)
        with torch.no_grad():
            linear.weight.normal_(0.0, 0.005)
            linear.bias.fill_(0.1)
        layers += [linear, nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class TimmResNet(nn.Module):
    """A timm ResNet as a shared encoder, run as four ``stages`` (stem + layer1, layer2, layer3, layer4)
    and a ``tail`` applied after the last stage, so that Cross-stitch, NDDR-CNN and MTAN can act between
    stages. Each stage is a ``nn.Sequential`` ending in its last residual block (MTAN's attention reads the
    output before that block).

    * ``pooled=False`` (NYUv2, CityScapes): the last stage's feature map, with ``output_stride`` 8 turning
      layer3 and layer4 into dilated convolutions (Yu et al., 2017) exactly as LibMTL's ``resnet_dilated``;
      ``out_features`` is its channel count; the tail is the identity.
    * ``pooled=True`` (CelebA, Office): the tail average-pools to a vector and, with ``hidden``, applies
      LibMTL's Office layer (``pooled_tail``).

    ``pretrained``: False, True (timm's weights for ``name``, from the hub's cache) or the path of a local
    weights file (``.pth``/``.safetensors``) for machines without network access.
    """

    def __init__(
        self,
        name: str = "resnet50.tv_in1k",
        pretrained: bool | str = False,
        output_stride: int = 32,
        pooled: bool = False,
        hidden: int | None = None,
        hidden_dropout: float = 0.5,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if hidden is not None and not pooled:
            raise ValueError("dataset.encoder.hidden needs dataset.encoder.pooled=true")
        options: dict = {
            "in_chans": in_chans,
            "num_classes": 0,
            "global_pool": "",
            "output_stride": output_stride,
        }
        if isinstance(pretrained, str):
            path = Path(pretrained).expanduser()
            if not path.is_file():
                raise FileNotFoundError(
                    f"pretrained weights {path} not found; set dataset.encoder.pretrained to a weights file, "
                    "true (download through timm) or false"
                )
            options.update(pretrained=True, pretrained_cfg_overlay={"file": str(path)})
        else:
            options["pretrained"] = bool(pretrained)
        body = timm.create_model(name, **options)
        self.stages = nn.ModuleList(
            [
                nn.Sequential(body.conv1, body.bn1, body.act1, body.maxpool, *body.layer1),
                body.layer2,
                body.layer3,
                body.layer4,
            ]
        )
        self.stem_length = 4  # conv1, bn1, act1, maxpool open stage 0 (PLE and LTB also cut after them)
        self.stage_channels = [info["num_chs"] for info in body.feature_info[1:5]]
        self.stage_is_vector = [False] * 4
        self.block = type(body.layer1[0])
        self.pooled = pooled
        self.tail = pooled_tail(body.num_features, hidden, hidden_dropout) if pooled else nn.Identity()
        self.out_features = hidden if hidden is not None else body.num_features

    def residual_block(self, in_channels: int, out_channels: int) -> nn.Module:
        """A stride-1 residual block of this ResNet's kind from ``in_channels`` to ``out_channels``, with a
        1×1 conv + BN shortcut (the shared block between MTAN's attention stages, LibMTL/architecture/
        MTAN.py@3928656 ``_conv_layer``)."""
        expansion = self.block.expansion
        shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
        )
        block = Bottleneck if self.block is Bottleneck else BasicBlock
        return block(in_channels, out_channels // expansion, downsample=shortcut)

    @property
    def block_expansion(self) -> int:
        """Output channels per bottleneck channel (4 for ResNet-50, 1 for ResNet-18)."""
        return self.block.expansion

    def forward(self, images: Tensor) -> Tensor:
        for stage in self.stages:
            images = stage(images)
        return self.tail(images)
