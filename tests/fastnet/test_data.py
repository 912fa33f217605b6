"""Tests for nst.fastnet.data: file discovery per layout, corrupt-file handling, crops and the val split."""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from nst.errors import NSTError
from nst.fastnet.data import ImageDataset, StyleDataModule, default_workers, image_files, photo_batch
from tests.helpers import compose_config, make_image

CONF = Path(__file__).resolve().parents[2] / "conf" / "data"
SIZES = [(90, 40), (40, 90), (64, 48), (48, 64), (80, 80), (70, 50)]  # (width, height), mostly non-square


def make_folder(root: Path, n: int) -> list[Path]:
    return [make_image(root / f"img{i:02d}.jpg", SIZES[i % len(SIZES)], seed=i) for i in range(n)]


def datamodule(root: Path, **kwargs) -> StyleDataModule:
    args = dict(source="folder", root=str(root), image_size=32, batch_size=2, num_workers=0, num_val=2)
    return StyleDataModule(**(args | kwargs))


# --- finding files -----------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["train2014", "train2017"])
def test_coco_split_folder_or_its_parent(tmp_path: Path, split: str) -> None:
    folder = tmp_path / split
    expected = [make_image(folder / "COCO_b.jpg"), make_image(folder / "COCO_a.jpg")]
    (folder / "notes.txt").write_text("not an image")
    make_image(tmp_path / "stray.jpg")  # beside the split folder: not part of COCO
    assert image_files("coco", folder) == sorted(expected)
    assert image_files("coco", tmp_path) == sorted(expected)


def test_visual_genome_uses_both_parts(tmp_path: Path) -> None:
    one = make_image(tmp_path / "VG_100K" / "1.jpg")
    two = make_image(tmp_path / "VG_100K_2" / "2.jpg")
    make_image(tmp_path / "other" / "3.jpg")
    assert image_files("visual_genome", tmp_path) == [one, two]
    (two).unlink()
    (tmp_path / "VG_100K_2").rmdir()
    assert image_files("visual_genome", tmp_path) == [one]


def test_folder_is_recursive_and_ignores_case_and_non_images(tmp_path: Path) -> None:
    expected = [
        make_image(tmp_path / "a.JPG"),
        make_image(tmp_path / "b.jpeg"),
        make_image(tmp_path / "sub" / "c.PNG"),
        make_image(tmp_path / "sub" / "deep" / "d.WebP"),
    ]
    (tmp_path / "readme.txt").write_text("hello")
    make_image(tmp_path / "sub" / "e.gif")
    (tmp_path / "dir.jpg").mkdir()  # a folder with an image suffix is not a file
    assert image_files("folder", tmp_path) == sorted(expected)


@pytest.mark.parametrize("source", ["coco", "visual_genome", "folder"])
@pytest.mark.parametrize("layout", ["missing", "empty"])
def test_no_images_says_how_to_get_them(tmp_path: Path, source: str, layout: str) -> None:
    root = tmp_path / "data"
    if layout == "empty":
        root.mkdir()
        (root / "notes.txt").write_text("no images here")
    with pytest.raises(NSTError) as info:
        image_files(source, root)
    message = str(info.value)
    for needed in ("COCO", "cocodataset.org", "train2014.zip", "Visual Genome", "VG_100K_2", "data=folder", str(root)):
        assert needed in message
    assert "\n" not in message


def test_missing_root_fails_in_setup(tmp_path: Path) -> None:
    with pytest.raises(NSTError, match="folder not found.*data=folder data.root=PATH"):
        datamodule(tmp_path / "nowhere").setup("fit")


def test_bad_settings_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(NSTError, match="data=coco"):
        image_files("imagenet", tmp_path)
    with pytest.raises(NSTError, match="image_size"):
        datamodule(tmp_path, image_size=8)


# --- corrupt files ------------------------------------------------------------------------------


def test_corrupt_file_is_skipped_with_one_warning(tmp_path: Path) -> None:
    good = make_folder(tmp_path, 8)
    bad = tmp_path / "img99.jpg"
    bad.write_bytes(np.random.default_rng(0).bytes(500))
    dm = datamodule(tmp_path)
    with pytest.warns(UserWarning, match=r"skipped 1 of 9 images that could not be read: first one: .*img99\.jpg"):
        dm.setup("fit")
    assert sorted(dm.train_set.files + dm.val_set.files) == good
    batches = list(dm.train_dataloader())
    assert len(batches) == 3 and all(b.shape == (2, 3, 32, 32) for b in batches)


def test_verify_images_off_keeps_corrupt_files(tmp_path: Path) -> None:
    make_folder(tmp_path, 4)
    (tmp_path / "img99.jpg").write_bytes(b"not a jpeg at all")
    dm = datamodule(tmp_path, verify_images=False, num_val=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no up-front check, so no warning yet
        dm.setup("fit")
    assert len(dm.train_set) == 5


def test_file_corrupt_past_header_is_replaced_at_load(tmp_path: Path) -> None:
    files = make_folder(tmp_path, 3)
    data = files[1].read_bytes()
    files[1].write_bytes(data[: len(data) // 2])  # header intact, image data cut short
    dm = datamodule(tmp_path, num_val=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dm.setup("fit")  # the header check cannot see this one
    assert dm.train_set.files == files
    dataset = ImageDataset(files, 32, train=False)
    with pytest.warns(UserWarning, match=r"unreadable image .*img01\.jpg"):
        item = dataset[1]
    assert torch.equal(item, dataset[2])  # the next image stands in, deterministically
    with pytest.raises(NSTError, match="none of the 1 images could be read"), pytest.warns(UserWarning):
        ImageDataset([files[1]], 32)[0]


# --- tensors ------------------------------------------------------------------------------------


def test_batches_are_square_float_crops_in_unit_range(tmp_path: Path) -> None:
    make_folder(tmp_path, 6)
    dm = datamodule(tmp_path, image_size=40, batch_size=2, num_val=2)
    dm.setup("fit")
    for loader in (dm.train_dataloader(), dm.val_dataloader()):
        batch = next(iter(loader))
        assert type(batch) is torch.Tensor  # a plain tensor, not a tv_tensors subclass or a tuple
        assert batch.shape == (2, 3, 40, 40) and batch.dtype == torch.float32
        assert 0.0 <= batch.min() < batch.max() <= 1.0
    images = dm.val_images()
    assert images.shape == (2, 3, 40, 40)
    assert torch.equal(images, next(iter(dm.val_dataloader())))


def test_crop_is_random_for_train_and_central_for_val(tmp_path: Path) -> None:
    # A horizontal ramp 90x40: resized to 72x32, so a 32 px crop can start anywhere in 0..40.
    ramp = np.tile(np.linspace(0, 255, 90, dtype=np.uint8)[None, :, None], (40, 1, 3))
    path = tmp_path / "ramp.png"
    Image.fromarray(ramp).save(path)
    torch.manual_seed(0)
    train = ImageDataset([path], 32, train=True)
    lefts = {round(train[0][0, 0, 0].item(), 3) for _ in range(20)}
    assert len(lefts) > 3
    val = ImageDataset([path], 32, train=False)
    centre = val[0]
    assert torch.equal(centre, val[0])
    assert centre[0, 0, 0] == pytest.approx(20 / 71, abs=0.03)  # left edge of a centred crop: column 20 of 72


# --- split and loaders --------------------------------------------------------------------------


def test_val_split_is_seeded_disjoint_and_sized(tmp_path: Path) -> None:
    files = make_folder(tmp_path, 12)
    splits = []
    for global_seed in (1, 2):
        random.seed(global_seed)
        torch.manual_seed(global_seed)
        dm = datamodule(tmp_path, num_val=4)
        dm.setup("fit")
        assert len(dm.val_set) == 4 and len(dm.train_set) == 8
        assert not set(dm.val_set.files) & set(dm.train_set.files)
        assert sorted(dm.val_set.files + dm.train_set.files) == files
        splits.append(dm.val_set.files)
    assert splits[0] == splits[1]
    other = datamodule(tmp_path, num_val=4, seed=1)
    other.setup("fit")
    assert other.val_set.files != splits[0]  # the seed is what picks them


def test_val_never_takes_more_than_half(tmp_path: Path) -> None:
    make_folder(tmp_path, 5)
    dm = datamodule(tmp_path, num_val=4)
    dm.setup("fit")
    assert (len(dm.val_set), len(dm.train_set)) == (2, 3)
    single = tmp_path / "single"
    make_image(single / "only.png")
    dm = datamodule(single, num_val=4)
    dm.setup("fit")
    assert (len(dm.val_set), len(dm.train_set)) == (0, 1)
    assert dm.val_images().shape == (0, 3, 32, 32)


def test_train_loader_drops_last_only_when_a_full_batch_exists(tmp_path: Path) -> None:
    make_folder(tmp_path / "seven", 7)
    dm = datamodule(tmp_path / "seven", batch_size=2, num_val=2)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert loader.drop_last and len(loader) == 2  # 5 train images -> 2 full batches
    assert not loader.pin_memory or torch.cuda.is_available()
    make_image(tmp_path / "one" / "a.jpg")
    dm = datamodule(tmp_path / "one", batch_size=4, num_val=2)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert not loader.drop_last and [b.shape[0] for b in loader] == [1]


def test_setup_twice_keeps_the_same_datasets(tmp_path: Path) -> None:
    make_folder(tmp_path, 4)
    dm = datamodule(tmp_path)
    dm.setup("fit")
    train = dm.train_set
    dm.setup("validate")
    assert dm.train_set is train


# --- config and Lightning -----------------------------------------------------------------------


@pytest.mark.parametrize("source", ["coco", "visual_genome", "folder"])
def test_hydra_config_instantiates(tmp_path: Path, source: str) -> None:
    cfg = compose_config("train", [f"data={source}", f"paths.data_dir={tmp_path}", f"paths.output_dir={tmp_path}"])
    dm = instantiate(cfg.data)
    assert isinstance(dm, StyleDataModule)
    assert dm.hparams.source == source and dm.hparams.root.startswith(str(tmp_path))
    assert (dm.hparams.image_size, dm.hparams.batch_size, dm.hparams.num_val) == (512, 2, 4)
    assert dm.hparams.verify_images is True and dm.hparams.seed == 0
    assert dm.hparams.num_workers is None and dm.num_workers == default_workers()  # null: auto


def test_num_workers_default_is_the_cores_at_most_8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for cores, expected in ((2, 2), (1, 1), (64, 8)):
        monkeypatch.setattr("os.sched_getaffinity", lambda pid, n=cores: set(range(n)))
        assert default_workers() == expected
        assert datamodule(tmp_path).num_workers == 0  # an explicit value is kept
        assert datamodule(tmp_path, num_workers=None).num_workers == expected


def test_photo_batch_crops_like_validation_and_expands_folders(tmp_path: Path) -> None:
    photos = make_folder(tmp_path / "mine", 3)
    batch = photo_batch([photos[0], tmp_path / "mine"], image_size=32)
    assert batch.shape == (4, 3, 32, 32) and 0 <= batch.min() and batch.max() <= 1
    torch.testing.assert_close(batch[0], ImageDataset([photos[0]], 32, train=False)[0])
    torch.testing.assert_close(batch[0], batch[1])  # the folder's first image is the same photo
    with pytest.raises(NSTError, match="image not found"):
        photo_batch([tmp_path / "nope.jpg"], image_size=32)


class _MeanModule(L.LightningModule):
    """Just enough of a model to check that batches arrive as (B, 3, S, S) image tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))
        self.shapes: list[tuple[int, ...]] = []

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        self.shapes.append(tuple(batch.shape))
        return (batch * self.scale).mean()

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self.shapes.append(tuple(batch.shape))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_trainer_fit_receives_image_batches(tmp_path: Path) -> None:
    make_folder(tmp_path / "images", 6)
    dm = datamodule(tmp_path / "images", batch_size=2, num_val=2)
    module = _MeanModule()
    trainer = L.Trainer(
        fast_dev_run=2, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=dm)
    assert module.shapes == [(2, 3, 32, 32)] * 3  # two training steps, then the one val batch
