"""Makes torchvision's pretrained COCO weights for fasterrcnn_resnet50_fpn available to the
converter, and says whether it could.

Prints one word on stdout: DEFAULT when the weights are in the torch hub cache (already, or
downloaded now), none when they cannot be had (no network, a proxy, a corrupt download); the
reason and how to get them by hand go to stderr. scripts/demo.sh uses it to pick the pretrained
detector or, loudly, a random one. The download is torch's own (torch.hub, hash-checked), into
$TORCH_HOME/hub/checkpoints (default ~/.cache/torch/hub/checkpoints), where the converter's
`weights: DEFAULT` finds it.

    .venv/bin/python examples/object_detection/get_weights.py [--timeout SECONDS]
"""
from __future__ import annotations

import argparse
import contextlib
import socket
import sys
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="seconds to wait on the network before giving up (default 30)")
    args = ap.parse_args()

    import torch
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

    url = FasterRCNN_ResNet50_FPN_Weights.DEFAULT.url
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    target = cache / url.rsplit("/", 1)[-1]
    if target.is_file():
        print(f"get_weights: pretrained weights found at {target}", file=sys.stderr)
        print("DEFAULT")
        return 0
    socket.setdefaulttimeout(args.timeout)
    try:
        print(f"get_weights: downloading {url}", file=sys.stderr)
        with contextlib.redirect_stdout(sys.stderr):  # torch.hub prints "Downloading: ..."
            torch.hub.load_state_dict_from_url(url, progress=False, check_hash=True,
                                               weights_only=True)
    except Exception as e:  # offline, proxy, timeout, bad hash...
        target.unlink(missing_ok=True)
        print(f"get_weights: cannot get the pretrained weights ({type(e).__name__}: "
              f"{str(e)[:200]})\n"
              f"  to use them: download {url}\n"
              f"  on a machine with internet access and copy it to {target}\n"
              f"  (or point the converter config's weights: at the file)", file=sys.stderr)
        print("none")
        return 0
    print("DEFAULT")
    return 0


if __name__ == "__main__":
    sys.exit(main())
