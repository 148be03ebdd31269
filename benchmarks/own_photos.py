"""Own photos against the same images as Fashion-MNIST has them: accuracy of a trained model on both.

    python benchmarks/own_photos.py --ckpt lightning_logs/version_0 --count 500

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
from tests.data.catalogue_photos import VARIANTS, write_catalogue_photos  # noqa: E402


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

    def accuracy(predicted: list[int], every: int = 1, start: int = 0) -> float:
        pairs = list(zip(predicted, labels.tolist(), strict=True))[start::every]
        return sum(p == t for p, t in pairs) / len(pairs)

    whole = f"as Fashion-MNIST has them {accuracy(originals):.3f}, as photos {accuracy(photos):.3f}"
    print(f"{args.count} test images: {whole}")
    for index, variant in enumerate(VARIANTS):
        mine, theirs = accuracy(photos, len(VARIANTS), index), accuracy(originals, len(VARIANTS), index)
        print(f"  {variant:11s} originals {theirs:.3f}, photos {mine:.3f}")


if __name__ == "__main__":
    main()
