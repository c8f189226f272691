"""Chunk-aligned streaming: tile shares partition the grid, alignment means one writer per chunk, and ranks
streaming their own tiles into one Zarr array reproduce the in-memory result bitwise."""
import itertools
import multiprocessing

import numpy as np
import pytest

from test_tiling_valid import periodic_stencil, random_stencil, valid_stencil
from tiling import TileGrid, check_aligned, tile_apply, write_chunks

STENCIL = random_stencil(np.random.default_rng(7), (3, 3, 3))
FN = valid_stencil(STENCIL, (3, 3, 3))


def writers_per_chunk(grid: TileGrid, chunks) -> dict:
    """Brute force: {chunk index: tiles whose owned region meets that chunk}."""
    writers = {}
    for t in grid.tiles():
        glob, _ = grid.owned_slices(t)
        ranges = [range(s.start // c, (s.stop - 1) // c + 1) for s, c in zip(glob, chunks)]
        for chunk in itertools.product(*ranges):
            writers.setdefault(chunk, []).append(t)
    return writers


@pytest.mark.parametrize("shape,tile,halo,mode", [((37, 50), 16, 3, "same"), ((19, 22, 17), (8, 5, 17), 9, "valid"),
                                                  ((5,), 2, 0, "same"), ((12, 11, 9), 5, 2, "same")])
def test_tile_shares_partition_the_grid(shape, tile, halo, mode):
    grid = TileGrid.make(shape, tile, halo, mode)
    for world in (1, 2, 3, 7, len(grid), len(grid) + 3):
        shares = [grid.tiles_of(rank, world) for rank in range(world)]
        assert sum(shares, []) == list(grid.tiles())  # every tile once, in C order
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
    with pytest.raises(ValueError, match="need 0 <= rank < world and world >= 1, got rank 2, world 2"):
        grid.tiles_of(2, 2)


@pytest.mark.parametrize("shape,tile,chunks", [
    ((40, 20), 16, (8, 4)), ((40, 20), 16, (16, 20)), ((37, 50), (16, 10), (8, 5)), ((37, 50), 16, (8, 5)),
    ((37, 50), 12, (8, 8)), ((20, 20), 20, (7, 3)), ((19, 22, 17), 8, (4, 8, 8)), ((19, 22, 17), 8, (4, 3, 8)),
    ((33,), 11, (5,)), ((33,), 10, (5,)), ((33,), 10, (20,)),
])
def test_alignment_check_holds_iff_every_chunk_has_one_writer(shape, tile, chunks):
    """The last tile of 37 with tile 16 owns 5 pixels, its core starts at 21: ownership, not cores, decides."""
    grid = TileGrid.make(shape, tile, 2)
    shared = [c for c, ts in writers_per_chunk(grid, chunks).items() if len(ts) > 1]
    if shared:
        with pytest.raises(ValueError, match="is not a multiple of the chunk"):
            check_aligned(grid, chunks)
    else:
        check_aligned(grid, chunks)
        check_aligned(grid, (3, *chunks))  # an output's (C, *spatial) chunks


def test_misaligned_grid_is_refused_with_the_values(tmp_path):
    zarr = pytest.importorskip("zarr")
    with pytest.raises(ValueError, match="tile 10 on axis 1 is not a multiple of the chunk 4: .* tile of 8 or 12 on"):
        check_aligned(TileGrid.make((16, 24), (8, 10), 1), (8, 4))
    with pytest.raises(ValueError, match="use a tile of 8 on that axis"):
        check_aligned(TileGrid.make((16, 24), 5, 1), (1, 8, 8))
    with pytest.raises(ValueError, match="one value per spatial axis"):
        check_aligned(TileGrid.make((16, 24), 8, 1), (8,))
    x = np.random.default_rng(0).normal(size=(1, 24, 20, 18))
    out = zarr.create_array(store=str(tmp_path / "o.zarr"), shape=x.shape, chunks=(1, 8, 8, 8), dtype="float64",
                            fill_value=-1.0)
    with pytest.raises(ValueError, match="tile 12 on axis 0 is not a multiple of the chunk 8"):
        tile_apply(FN, x, 12, 3, mode="valid", out=out, tiles=[(0, 0, 0)])
    assert (out[:] == -1).all()  # refused before anything was written
    sharded = zarr.create_array(store=str(tmp_path / "s.zarr"), shape=x.shape, chunks=(1, 4, 4, 4),
                                shards=(1, 8, 8, 8), dtype="float64")
    assert write_chunks(sharded) == (1, 8, 8, 8) and write_chunks(out) == (1, 8, 8, 8) and write_chunks(x) is None
    with pytest.raises(ValueError, match="tile 4 on axis 0 is not a multiple of the chunk 8"):  # shards decide
        tile_apply(FN, x, 4, 3, mode="valid", out=sharded, tiles=[(0, 0, 0)])


def test_shares_and_resume_reproduce_the_whole_result(tmp_path):
    zarr = pytest.importorskip("zarr")
    x = np.random.default_rng(1).normal(size=(2, 24, 20, 18))
    grid = TileGrid.make(x.shape[1:], (8, 8, 16), 3, "valid")
    whole = tile_apply(FN, x, grid.tile, 3, mode="valid")
    np.testing.assert_allclose(whole, periodic_stencil(x, STENCIL), rtol=0, atol=1e-10)
    parts = [tile_apply(FN, x, grid.tile, 3, mode="valid", tiles=grid.tiles_of(r, 3)) for r in range(3)]
    np.testing.assert_array_equal(sum(parts), whole)  # zeros outside each share's owned regions
    out = zarr.create_array(store=str(tmp_path / "o.zarr"), shape=x.shape, chunks=(1, 8, 8, 8), dtype="float64")
    written = []
    first = grid.tiles_of(0, 2)
    assert tile_apply(FN, x, grid.tile, 3, mode="valid", out=out, tiles=first, done=written.append) is out
    assert written == first
    rest = [t for t in grid.tiles() if t not in set(written)]  # a resumed run: only what is missing
    tile_apply(FN, x, grid.tile, 3, mode="valid", out=out, tiles=rest, done=written.append)
    assert sorted(written) == list(grid.tiles())
    np.testing.assert_array_equal(out[:], whole)
    assert tile_apply(FN, x, grid.tile, 3, mode="valid", out=out, tiles=[]) is out
    with pytest.raises(ValueError, match="selected no tiles and no out= was given"):
        tile_apply(FN, x, grid.tile, 3, mode="valid", tiles=[])


def test_bad_tile_lists():
    x = np.zeros((1, 24, 20, 18))
    with pytest.raises(ValueError, match=r"tile \(3, 0, 0\) is not in the grid: expected 3 indices below \(3, 3, 2\)"):
        tile_apply(FN, x, (8, 8, 16), 3, mode="valid", tiles=[(3, 0, 0)])
    with pytest.raises(ValueError, match=r"tile \(0, 0\) is not in the grid"):
        tile_apply(FN, x, (8, 8, 16), 3, mode="valid", tiles=[(0, 0)])
    with pytest.raises(ValueError, match=r"more than once: \[\(1, 0, 0\)\]"):
        tile_apply(FN, x, (8, 8, 16), 3, mode="valid", tiles=[(1, 0, 0), (0, 0, 0), (1, 0, 0)])
    with pytest.raises(ValueError, match="tiles= runs a subset of tiles and needs blend='core'"):
        tile_apply(lambda b: b, x, 8, 3, blend="cosine", tiles=[(0, 0, 0)])


def write_share(path: str, rank: int, world: int, x: np.ndarray, tile, halo: int) -> None:
    """One rank: open the shared output and stream its own tiles into it."""
    import zarr

    out = zarr.open_array(path, mode="r+")
    grid = TileGrid.make(x.shape[1:], tile, halo, "valid")
    tile_apply(FN, x, tile, halo, mode="valid", batch_size=2, out=out, tiles=grid.tiles_of(rank, world))


@pytest.mark.slow
@pytest.mark.parametrize("shards", [None, (1, 8, 8, 16)])
def test_two_processes_stream_into_one_zarr(tmp_path, shards):
    zarr = pytest.importorskip("zarr")
    x = np.random.default_rng(2).normal(size=(2, 24, 20, 18))
    tile, halo = (8, 8, 16), 3
    path = str(tmp_path / "out.zarr")
    zarr.create_array(store=path, shape=x.shape, chunks=(1, 4, 4, 8) if shards else (1, 8, 8, 8), shards=shards,
                      dtype="float64", fill_value=np.nan)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=write_share, args=(path, rank, 2, x, tile, halo)) for rank in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    np.testing.assert_array_equal(zarr.open_array(path, mode="r")[:], tile_apply(FN, x, tile, halo, mode="valid"))
