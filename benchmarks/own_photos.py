"""Own photos against the same images as Fashion-MNIST has them: accuracy of a trained model on both.

    python benchmarks/own_photos.py --ckpt lightning_logs/lenet/version_0 --count 500

The photos are test images re-rendered as catalogue photos (tests/data/catalogue_photos.py); each goes through
``load_classifier``'s preprocessing, as ``predict --data.predict_path`` does.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the photo builder lives with the tests

from cnn_lightning import load_classifier  # noqa: E402
from cnn_lightning.data import DEBIAN_DIR, load_split, prepare_raw_files  # noqa: E402
from tests.data.catalogue_photos import TINTED_VARIANTS, VARIANTS, write_catalogue_photos  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="a run folder or a .ckpt")
    parser.add_argument("--count", type=int, default=500, help="test images to photograph")
    parser.add_argument("--data-dir", default=str(REPO / "data"))
    args = parser.parse_args()
    images, labels = load_split(prepare_raw_files(args.data_dir, [DEBIAN_DIR], download=True), train=False)
    images, labels = images[: args.count], labels[: args.count]
    classify = load_classifier(args.ckpt)
    names = classify.categories
    originals = [names.index(p.prediction) for p in classify(images)]
    with tempfile.TemporaryDirectory() as folder:
        photos = [names.index(p.prediction) for p in classify(write_catalogue_photos(Path(folder), images))]

    def accuracy(predicted: list[int], variants: tuple[str, ...] = VARIANTS) -> float:
        chosen = [i for i in range(len(labels)) if VARIANTS[i % len(VARIANTS)] in variants]
        return sum(predicted[i] == labels[i] for i in chosen) / len(chosen)

    def line(name: str, variants: tuple[str, ...]) -> str:
        theirs, mine = accuracy(originals, variants), accuracy(photos, variants)
        gap = f"{100 * (mine - theirs):+.1f} pts"
        return f"{name}: as Fashion-MNIST has them {theirs:.3f}, as photos {mine:.3f} ({gap})"

    print(line(f"{args.count} test images", VARIANTS))
    white = tuple(v for v in VARIANTS if v not in TINTED_VARIANTS)
    print(line("  white backgrounds", white))
    print(line("  tinted, grey, coloured backgrounds", TINTED_VARIANTS))
    for variant in VARIANTS:
        print(line(f"    {variant}", (variant,)))


if __name__ == "__main__":
    main()
