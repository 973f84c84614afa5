"""ResNet encoders from timm: dilated feature maps for dense prediction, pooled vectors for classification."""

from __future__ import annotations

from pathlib import Path

import timm
from torch import Tensor, nn


class TimmResNet(nn.Module):
    """A timm ResNet as a shared encoder.

    * ``pooled=False`` (NYUv2, CityScapes): the last stage's feature map, with ``output_stride`` 8 turning
      the last two stages into dilated convolutions (Yu et al., 2017), as in DeepLabV3+; ``out_features``
      is its channel count.
    * ``pooled=True`` (CelebA, Office): the globally pooled feature vector; ``out_features`` its size.

    ``pretrained``: False, True (timm's ImageNet weights, from the hub's cache) or the path of a local
    weights file (``.pth``/``.safetensors``) for machines without network access.
    """

    def __init__(
        self,
        name: str = "resnet50",
        pretrained: bool | str = False,
        output_stride: int = 32,
        pooled: bool = False,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        options: dict = {"in_chans": in_chans}
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
        if pooled:
            self.body = timm.create_model(name, num_classes=0, **options)
            self.out_features = self.body.num_features
        else:
            self.body = timm.create_model(
                name, features_only=True, out_indices=(4,), output_stride=output_stride, **options
            )
            self.out_features = self.body.feature_info.channels()[-1]
        self.pooled = pooled

    def forward(self, images: Tensor) -> Tensor:
        return self.body(images) if self.pooled else self.body(images)[-1]
