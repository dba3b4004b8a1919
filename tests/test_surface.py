"""After marching cubes: clean-up, simplification, UVs, the baked texture, and the GLB and
textured OBJ files that carry them."""

from __future__ import annotations

import numpy as np
import pytest

from openlrm_blender.engine import Mesh, Options
from openlrm_blender.engine.export.gltf import glb_bytes
from openlrm_blender.engine.export.mesh_files import write_mesh
from openlrm_blender.engine.geometry.normals import vertex_normals
from openlrm_blender.engine.surface.bake import bake_texture, dilate, texel_points
from openlrm_blender.engine.surface.cleanup import remove_small_pieces, taubin_smooth
from openlrm_blender.engine.surface.simplify import simplify
from openlrm_blender.engine.surface.uv import unwrap
from tests.conftest import TINY_SIZE
from tests.support.glb import accessor, read_glb


def sphere(radius: float = 1.0, centre=(0.0, 0.0, 0.0), steps: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """A UV sphere (poles welded), outward-facing."""
    theta, phi = np.meshgrid(
        np.linspace(0, np.pi, steps + 1)[1:-1], np.linspace(0, 2 * np.pi, 2 * steps, endpoint=False), indexing="ij"
    )
    ring = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], -1).reshape(-1, 3)
    vertices = np.concatenate([[[0, 0, 1]], ring, [[0, 0, -1]]]) * radius + centre
    columns, rows = 2 * steps, steps - 1
    index = lambda r, c: 1 + r * columns + c % columns  # noqa: E731
    faces = [(0, index(0, c + 1), index(0, c)) for c in range(columns)]
    for r in range(rows - 1):
        for c in range(columns):
            faces += [
                (index(r, c), index(r, c + 1), index(r + 1, c)),
                (index(r, c + 1), index(r + 1, c + 1), index(r + 1, c)),
            ]
    last = len(vertices) - 1
    faces += [(last, index(rows - 1, c), index(rows - 1, c + 1)) for c in range(columns)]
    return vertices.astype(np.float32), np.array(faces, dtype=np.int32)[:, ::-1].copy()  # listed inward: turned


def sphere_and_speck() -> tuple[np.ndarray, np.ndarray]:
    big_v, big_f = sphere()
    small_v, small_f = sphere(0.05, (2.0, 0.0, 0.0), steps=6)
    return np.concatenate([big_v, small_v]), np.concatenate([big_f, small_f + len(big_v)])


def test_floaters_are_removed_and_the_object_kept():
    vertices, faces = sphere_and_speck()
    kept_v, kept_f, source = remove_small_pieces(vertices, faces, 0.1)  # the speck has 5% of the faces
    big_v, big_f = sphere()
    assert len(kept_f) == len(big_f) and len(kept_v) == len(big_v)
    np.testing.assert_array_equal(kept_v, vertices[source])
    assert np.abs(kept_v).max() <= 1.0 + 1e-6  # the speck at x = 2 is gone
    assert remove_small_pieces(vertices, faces, 0.0)[1] is faces


def test_taubin_smoothing_evens_the_surface_without_shrinking_it():
    vertices, faces = sphere()
    bumpy = vertices * (1 + 0.05 * np.random.default_rng(0).standard_normal((len(vertices), 1))).astype(np.float32)
    smoothed = taubin_smooth(bumpy, faces, 10)
    radius = np.linalg.norm(smoothed, axis=1)
    assert radius.std() < 0.5 * np.linalg.norm(bumpy, axis=1).std()
    assert abs(radius.mean() - 1.0) < 0.03  # Laplacian smoothing alone would shrink it


def test_simplify_meets_the_face_budget():
    vertices, faces = sphere(steps=48)
    points, triangles = simplify(vertices, faces, 500)
    assert 0 < len(triangles) <= 500 and triangles.max() < len(points)
    assert np.abs(np.linalg.norm(points, axis=1) - 1.0).max() < 0.05  # still the sphere
    assert simplify(vertices, faces, 0)[1] is faces


def test_unwrap_gives_uvs_in_the_unit_square_on_copies_of_the_vertices():
    vertices, faces = sphere()
    unwrapped = unwrap(vertices, faces, 512)
    assert len(unwrapped.faces) == len(faces)
    assert unwrapped.uvs.min() >= 0.0 and unwrapped.uvs.max() <= 1.0
    np.testing.assert_array_equal(unwrapped.vertices, vertices[unwrapped.source])


def bilinear(texture: np.ndarray, uvs: np.ndarray) -> np.ndarray:
    """The texture read at UVs (v up, row 0 at the top), as a renderer filters it."""
    size = texture.shape[0]
    x, y = uvs[:, 0] * size - 0.5, (1 - uvs[:, 1]) * size - 0.5
    x0, y0 = np.clip(np.floor(x).astype(int), 0, size - 2), np.clip(np.floor(y).astype(int), 0, size - 2)
    fx, fy = np.clip(x - x0, 0, 1)[:, None], np.clip(y - y0, 0, 1)[:, None]
    t = texture.astype(np.float64)
    top = t[y0, x0] * (1 - fx) + t[y0, x0 + 1] * fx
    bottom = t[y0 + 1, x0] * (1 - fx) + t[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def test_baking_a_field_covers_the_charts_and_pads_them():
    vertices, faces = sphere()
    unwrapped = unwrap(vertices, faces, 256)
    normals = vertex_normals(vertices, faces)[unwrapped.source]
    texels = texel_points(unwrapped.vertices, unwrapped.faces, unwrapped.uvs, normals, 256)
    assert np.abs(np.linalg.norm(texels.points, axis=1) - 1.0).max() < 0.02  # texels lie on the surface
    assert np.einsum("nd,nd->n", texels.normals, texels.points).min() > 0.95  # a sphere's normals point out
    texture = bake_texture(unwrapped.vertices, unwrapped.faces, unwrapped.uvs, normals, 256, lambda p, n: (p + 1) / 2)
    expected = np.floor((unwrapped.vertices + 1) / 2 * 255)
    assert np.median(np.abs(bilinear(texture, unwrapped.uvs) - expected)) <= 3


def test_every_texel_filtering_can_read_is_the_charts_own():
    """Bilinear filtering at any point of a chart, its border included, reads only texels that
    hold the chart's own colour at their nearest point of it (none was grown from a
    neighbour), so a viewer never mixes another colour into the chart's edge."""
    vertices, faces = sphere()
    size = 256
    unwrapped = unwrap(vertices, faces, size)
    normals = vertex_normals(vertices, faces)[unwrapped.source]
    texels = texel_points(unwrapped.vertices, unwrapped.faces, unwrapped.uvs, normals, size)
    own = np.zeros((size, size), dtype=bool)
    own[texels.rows, texels.columns] = True
    rng = np.random.default_rng(0)
    corners = unwrapped.faces[rng.integers(0, len(unwrapped.faces), 20000)]
    weights = rng.dirichlet(np.ones(3), len(corners))
    weights[::2] = np.eye(3)[rng.integers(0, 3, len(corners[::2]))] * 0.999 + 0.0005  # points at the charts' corners
    uv = np.einsum("nk,nkd->nd", weights, unwrapped.uvs[corners])
    x, y = uv[:, 0] * size - 0.5, (1 - uv[:, 1]) * size - 0.5
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    read = [own[np.clip(y0 + dy, 0, size - 1), np.clip(x0 + dx, 0, size - 1)] for dy in (0, 1) for dx in (0, 1)]
    assert np.all(read)


def test_dilation_fills_the_padding_then_the_rest():
    image = np.zeros((8, 8, 3), dtype=np.float32)
    covered = np.zeros((8, 8), dtype=bool)
    image[3:5, 3:5], covered[3:5, 3:5] = 200.0, True
    grown = dilate(image, covered, 1)
    assert (grown[2:6, 2:6] == 200).all() and (grown == 200).all()  # the rest takes the mean colour


@pytest.fixture(scope="module")
def textured(tiny_dir):
    """The tiny model's mesh unsimplified and baked, and its vertex-colour twin."""
    from openlrm_blender.engine.pipeline import generate

    common = dict(weights_dir=tiny_dir, input_size=TINY_SIZE, resolution=48, recenter=False, min_piece=0.01)
    plain = generate(tiny_dir / "input.png", Options(**common)).mesh
    baked = generate(
        tiny_dir / "input.png", Options(**common, textured=True, texture_size=1024, photo_texture=False)
    ).mesh
    return plain, baked


def test_the_texture_at_each_vertex_is_its_vertex_colour(textured):
    _, baked = textured
    difference = np.abs(bilinear(baked.texture, baked.uvs) - baked.colours_u8.astype(np.float64))
    print(
        f"texture against vertex colours: median {np.median(difference):.2f}/255, "
        f"95th percentile {np.percentile(difference, 95):.1f}"
    )
    assert np.median(difference) <= 6


def test_a_textured_mesh_is_the_same_surface(textured):
    plain, baked = textured
    assert len(baked.faces) == len(plain.faces)
    np.testing.assert_allclose(baked.vertices.min(axis=0), plain.vertices.min(axis=0), atol=1e-6)
    np.testing.assert_allclose(baked.vertices.max(axis=0), plain.vertices.max(axis=0), atol=1e-6)


def test_glb_structure_upright_and_textured(textured, tmp_path):
    from PIL import Image

    _, baked = textured
    path = tmp_path / "object.glb"
    write_mesh(baked, path)
    document, binary = read_glb(path.read_bytes())
    (mesh,) = document["meshes"]
    (primitive,) = mesh["primitives"]
    attributes = primitive["attributes"]
    assert set(attributes) == {"POSITION", "NORMAL", "TEXCOORD_0"}
    positions = accessor(document, binary, attributes["POSITION"])
    np.testing.assert_allclose(
        positions, np.stack([baked.vertices[:, 0], baked.vertices[:, 2], -baked.vertices[:, 1]], 1)
    )
    assert document["accessors"][attributes["POSITION"]]["max"] == pytest.approx(positions.max(axis=0).tolist())
    uvs = accessor(document, binary, attributes["TEXCOORD_0"])
    assert uvs.min() >= 0 and uvs.max() <= 1
    indices = accessor(document, binary, primitive["indices"])
    assert len(indices) == 3 * len(baked.faces) and indices.max() < len(positions)
    normals = accessor(document, binary, attributes["NORMAL"])
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
    # The copies of a vertex on either side of a seam are lit alike: the uncut surface's normal.
    _, welded = np.unique(positions, axis=0, return_inverse=True)
    welded = welded.reshape(-1)
    assert len(np.unique(welded)) < len(positions)
    first = np.full(welded.max() + 1, -1)
    first[welded[::-1]] = np.arange(len(welded))[::-1]
    np.testing.assert_allclose(normals, normals[first[welded]], atol=1e-6)
    image = document["images"][0]
    view = document["bufferViews"][image["bufferView"]]
    import io

    png = Image.open(io.BytesIO(binary[view["byteOffset"] : view["byteOffset"] + view["byteLength"]]))
    assert image["mimeType"] == "image/png" and png.size == (1024, 1024)
    material = document["materials"][primitive["material"]]
    assert material["pbrMetallicRoughness"]["baseColorTexture"] == {"index": 0}


def test_glb_up_is_the_objects_up():
    """A tall column along the engine's +Z stands along glTF's +Y."""
    vertices, faces = sphere()
    tall = Mesh(
        vertices * np.array([0.2, 0.3, 1.0], dtype=np.float32), faces, np.full((len(vertices), 3), 0.5, np.float32)
    )
    document, binary = read_glb(glb_bytes(tall))
    positions = accessor(document, binary, document["meshes"][0]["primitives"][0]["attributes"]["POSITION"])
    assert np.argmax(positions.max(axis=0) - positions.min(axis=0)) == 1
    assert "COLOR_0" in document["meshes"][0]["primitives"][0]["attributes"]  # untextured: vertex colours


def test_simplified_glb_from_the_command_line(tiny_dir, tmp_path):
    from openlrm_blender.engine.cli import main

    output = tmp_path / "light.glb"
    arguments = [str(tiny_dir / "input.png"), "-o", str(output), "--weights", str(tiny_dir), "--input-size", "56"]
    assert (
        main([*arguments, "--resolution", "48", "--no-recenter", "--faces", "2000", "--texture-size", "256", "-q"]) == 0
    )
    document, _ = read_glb(output.read_bytes())
    primitive = document["meshes"][0]["primitives"][0]
    assert document["accessors"][primitive["indices"]]["count"] <= 3 * 2000


def test_textured_obj_has_its_material_and_texture(textured, tmp_path):
    _, baked = textured
    path = tmp_path / "object.obj"
    write_mesh(baked, path)
    text = path.read_text()
    assert text.count("\nvt ") == len(baked.uvs) and "mtllib object.mtl" in text and "usemtl baked" in text
    assert "map_Kd object.png" in (tmp_path / "object.mtl").read_text()
    assert (tmp_path / "object.png").is_file() and not list(tmp_path.glob(".*part"))


def test_the_surface_stage_reports_its_steps_in_order(tiny_dir):
    from openlrm_blender.engine.pipeline import generate

    reports = []
    options = Options(
        weights_dir=tiny_dir,
        input_size=TINY_SIZE,
        resolution=32,
        recenter=False,
        faces=2000,
        textured=True,
        texture_size=128,
    )
    generate(tiny_dir / "input.png", options, progress=lambda *report: reports.append(report))
    fractions = [fraction for stage, fraction, _ in reports if stage == "surface"]
    messages = [message for stage, _, message in reports if stage == "surface"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("simplifying" in m for m in messages) and "unwrapping UVs" in messages
    assert any("baking a 128 px texture" in m for m in messages)


def test_the_rasteriser_finds_every_pixel_within_reach_and_its_nearest_point():
    """Against a brute-force reckoning: every pixel whose centre is within the reach of a
    triangle is found, with the distance and the point of the triangle nearest to it."""
    from openlrm_blender.engine.geometry.raster import nearest_triangles, touches

    rng = np.random.default_rng(3)
    size, reach = 40, 1.5
    x, y = rng.uniform(-3, size + 3, 30), rng.uniform(-3, size + 3, 30)
    faces = np.array([(0, 1, 2), (3, 4, 5), (6, 7, 8), (9, 10, 10)])  # the last one degenerate: a segment
    x[:9] = [5.2, 12.7, 7.1, 20.4, 20.6, 30.9, -2.0, 6.0, 1.0]
    y[:9] = [5.5, 6.1, 14.8, 20.0, 33.3, 25.2, 30.0, 38.5, 41.5]
    # Brute force: a pixel's distance is 0 inside (all three edge cross products of one sign),
    # else that of the nearest of many samples along the three edges.
    along = np.linspace(0, 1, 4001)  # 0.01 px apart on the longest edge
    rows, columns = np.divmod(np.arange(size * size), size)
    for index, corners in enumerate(faces):
        cx, cy = x[corners], y[corners]
        crosses = [
            (cx[(k + 1) % 3] - cx[k]) * (rows - cy[k]) - (cy[(k + 1) % 3] - cy[k]) * (columns - cx[k]) for k in range(3)
        ]
        inside = np.all(np.array(crosses) >= 0, axis=0) | np.all(np.array(crosses) <= 0, axis=0)
        inside &= abs((cx[1] - cx[0]) * (cy[2] - cy[0]) - (cx[2] - cx[0]) * (cy[1] - cy[0])) > 1e-9
        sx = np.concatenate([cx[k] + along * (cx[(k + 1) % 3] - cx[k]) for k in range(3)])
        sy = np.concatenate([cy[k] + along * (cy[(k + 1) % 3] - cy[k]) for k in range(3)])
        gap = np.where(inside, 0.0, np.hypot(columns[:, None] - sx, rows[:, None] - sy).min(axis=1))
        found = list(touches(x, y, faces[index : index + 1], size, reach))
        pixels = np.concatenate([t.pixel for t in found]) if found else np.zeros(0, int)
        expected = np.flatnonzero(gap <= reach - 0.01)
        assert set(expected) <= set(pixels) and set(pixels) <= set(np.flatnonzero(gap <= reach + 0.01)), index
        if found:
            distance = np.concatenate([t.distance for t in found])
            np.testing.assert_allclose(distance, gap[pixels], atol=0.01)
            nearest = np.concatenate([t.weights for t in found])
            np.testing.assert_allclose(
                np.hypot(nearest @ x[corners] - columns[pixels], nearest @ y[corners] - rows[pixels]),
                distance,
                atol=1e-9,
            )
    chosen = nearest_triangles(x, y, faces, size, reach)
    assert len(np.unique(chosen.pixel)) == len(chosen.pixel)  # one triangle per pixel, the nearest


def test_carried_colours_are_the_surfaces_own_at_each_point():
    """A point on a triangle takes its corners' colours blended by its barycentric weights
    (or, textured, the texel there); a point off the triangle its nearest edge's blend."""
    from openlrm_blender.engine.surface.transfer import colours_at, triangle_weights

    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32)
    faces = np.array([[0, 1, 2]], dtype=np.int32)
    colours = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    points = np.array([[0.2, 0.3, 0.0], [0.5, 0.5, 0.0], [2.0, -1.0, 0.0]])
    weights = triangle_weights(vertices, faces, np.zeros(3, dtype=np.int64), points)
    np.testing.assert_allclose(weights, [[0.5, 0.2, 0.3], [0.0, 0.5, 0.5], [0.0, 1.0, 0.0]], atol=1e-12)
    carried = colours_at(Mesh(vertices, faces, colours, rounding="round"), np.zeros(3, dtype=np.int64), points)
    np.testing.assert_allclose(carried, weights @ colours, atol=1e-12)

    size = 64  # a texture whose texel at (u, v) is (u, v, 0.5): its sample is where the point is
    v_of_row, u_of_column = np.meshgrid(
        1 - (np.arange(size) + 0.5) / size, (np.arange(size) + 0.5) / size, indexing="ij"
    )
    texture = np.round(np.stack([u_of_column, v_of_row, np.full_like(u_of_column, 0.5)], -1) * 255).astype(np.uint8)
    uvs = np.array([[0.1, 0.1], [0.9, 0.1], [0.1, 0.9]], dtype=np.float32)
    textured = Mesh(vertices, faces, colours, uvs=uvs, texture=texture)
    inside = points[:2]
    expected_uv = weights[:2] @ uvs
    sampled = colours_at(textured, np.zeros(2, dtype=np.int64), inside)
    np.testing.assert_allclose(sampled[:, :2], expected_uv, atol=1.0 / 255)
    np.testing.assert_allclose(sampled[:, 2], 128 / 255, atol=1e-9)


def test_polygons_are_cut_into_fans_of_their_own_corners():
    from openlrm_blender.jobs.quads import PolygonMesh

    sizes = np.array([4, 3, 5], dtype=np.int32)
    polygons = PolygonMesh(
        np.zeros((12, 3), np.float32), sizes, np.arange(12, dtype=np.int32), np.zeros((12, 3), np.uint8)
    )
    assert polygons.triangles().tolist() == [[0, 1, 2], [0, 2, 3], [4, 5, 6], [7, 8, 9], [7, 9, 10], [7, 10, 11]]
    assert polygons.quad_share == pytest.approx(1 / 3)
