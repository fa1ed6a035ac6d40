"""DataLoader: batching, collate, seeded shuffling, drop_last, worker processes."""
import numpy as np
import pytest

from scratchvision import Tensor
from scratchvision.data import DataLoader, Shapes, collate, list_collate, progress
from scratchvision.data import transforms as T


class Numbers:
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return np.full((3, 2, 2), i, np.float32), {"boxes": np.zeros((i % 3, 4)), "i": i}


def _ids(loader):
    return [[t["i"] for t in targets] for _, targets in loader]


def test_batches_collate_and_len():
    dl = DataLoader(Numbers(), batch_size=4)
    assert len(dl) == 3
    batches = list(dl)
    assert [b[0].shape for b in batches] == [(4, 3, 2, 2), (4, 3, 2, 2), (2, 3, 2, 2)]
    assert _ids(dl) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [len(t["boxes"]) for t in batches[0][1]] == [0, 1, 2, 0]
    dl = DataLoader(Numbers(), batch_size=4, drop_last=True)
    assert len(dl) == 2 and _ids(dl) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_shuffle_seeded():
    a = DataLoader(Numbers(), 3, shuffle=True, seed=1)
    b = DataLoader(Numbers(), 3, shuffle=True, seed=1)
    ea1, ea2 = _ids(a), _ids(a)
    assert ea1 == _ids(b) and ea2 == _ids(b)          # same sequence of epochs
    assert ea1 != ea2                                 # a new order each epoch
    assert sorted(sum(ea1, [])) == list(range(10))


def test_tensor_images_stack():
    ds = Shapes("train", 4, image_size=32, transforms=T.ToTensor())
    images, targets = next(iter(DataLoader(ds, batch_size=4)))
    assert isinstance(images, Tensor) and images.shape == (4, 3, 32, 32)
    np.testing.assert_allclose(images.data[2], ds[2][0].data)
    assert len(targets) == 4 and all("boxes" in t for t in targets)


def test_workers_match_single_process_and_are_reproducible():
    ds = Shapes("train", 6, image_size=32)
    ref = list(DataLoader(ds, batch_size=2, shuffle=True, seed=3))
    got = list(DataLoader(ds, batch_size=2, shuffle=True, seed=3, num_workers=2))
    for (ri, rt), (gi, gt) in zip(ref, got):
        np.testing.assert_array_equal(ri, gi)
        np.testing.assert_array_equal(rt[0]["boxes"], gt[0]["boxes"])
    # random transforms in workers: reseeded per batch, independent of the worker count
    aug = Shapes("train", 6, image_size=32, transforms=T.PhotometricDistort(p=1.0))
    one = list(DataLoader(aug, batch_size=2, seed=5, num_workers=1))
    two = list(DataLoader(aug, batch_size=2, seed=5, num_workers=2))
    for (a, _), (b, _) in zip(one, two):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(one[0][0], ref[0][0])


def test_collate_errors_and_list_collate():
    batch = [(np.zeros((3, 4, 4)), {}), (np.zeros((3, 5, 4)), {})]
    with pytest.raises(ValueError, match="different shapes"):
        collate(batch)
    images, targets = list_collate(batch)
    assert len(images) == 2 and targets == [{}, {}]
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(Numbers(), batch_size=0)


def test_progress_wraps_loader():
    dl = DataLoader(Numbers(), batch_size=5)
    bar = progress(dl, desc="epoch 0", disable=True)
    assert bar.total == 2
    assert len(list(bar)) == 2
