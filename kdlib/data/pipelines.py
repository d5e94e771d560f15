"""big_vision's input pipeline for the paper's datasets (``DataConfig.pipeline="big_vision"``).

The authors' configs (big_vision ``configs/proj/distill/``) train on
``decode|inception_crop(128)|flip_lr`` (ImageNet: ``decode_jpeg_and_inception_crop(224)``):
crops of the whole decoded image; and evaluate on ``decode|resize_small(160)|central_crop(128)``
(``bigsweep_flowers_pet.py``, ``bigsweep_food_sun.py``; ImageNet ``bit_i1k.py``:
``resize_small(256)|central_crop(224)``). kdlib stores the training images squashed to a square
with each image's true aspect (``tfds_source.decode_example(layout="full")``), so the crops
on device see all of the image with true pixel aspects; evaluation images are stored already
cut as big_vision cuts them (``layout="central_crop"``). The mild random crop of the ``rc``
policies is big_vision's ``resize(160)|random_crop(128)``: the same fraction of the squashed
square (``bigsweep_food_sun.py``'s sweep: ``resize(160)|central_crop(128)`` for the teacher).
"""

from __future__ import annotations

# Evaluation crop side / resized shorter side (and the rc policies' crop fraction).
SMALL_DATA_CROP_FRACTION = 128 / 160  # resize_small(160) | central_crop(128)
CROP_FRACTION = {"imagenet2012": 224 / 256}  # resize_small(256) | central_crop(224)


def crop_fraction(dataset: str) -> float:
    """The big_vision central-crop fraction of ``dataset``'s evaluation (and rc crops)."""
    return CROP_FRACTION.get(dataset, SMALL_DATA_CROP_FRACTION)
