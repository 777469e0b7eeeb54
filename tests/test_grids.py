"""Pictures for eyes: the class-labelled real | synthetic grid."""

import numpy as np

from genaug.grids import labelled_grid
from genaug.report import sample_grid


def test_labelled_grid_names_rows_titles_blocks_and_divides_them():
    real = np.zeros((3, 4, 8, 8, 1), np.uint8)
    synthetic = np.full((3, 4, 8, 8, 1), 128, np.uint8)
    grid = labelled_grid({"real": real, "synthetic": synthetic}, ["zero", "one", "a long class name"], scale=2)
    tile = 4 * (8 * 2 + 1) + 1  # image_grid's width of 4 columns
    assert grid.dtype == np.uint8 and grid.shape[2] == 3
    assert grid.shape[0] == 18 + 3 * (8 * 2 + 1) + 1  # the titles' band above the rows
    margin = grid.shape[1] - 2 * tile - 4
    assert margin > 40  # the longest class name fits at the left
    divider = grid[:, margin + tile : margin + tile + 4]
    assert (divider == [200, 30, 30]).all()
    assert (grid[:18, margin : margin + tile] < 255).any()  # the title "real" is drawn


def test_sample_grid_takes_each_class_from_its_own_images():
    x = np.repeat(np.arange(3, dtype=np.uint8)[:, None, None, None] * 100, 10, axis=0)
    x = np.broadcast_to(x, (30, 8, 8, 1)).copy()
    y = np.repeat(np.arange(3), 10)
    grid = sample_grid((x, y), (x, y), ["a", "b", "c"], per_class=2)
    assert grid.shape[2] == 3 and grid.shape[0] == 18 + 3 * (8 * 4 + 1) + 1
