"""mdt align and translate --align: drawn faces with known eyes and mouth, photographed
askew, come out framed like the training images; without landmarks, the centre square."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from mdt_datasets.synthetic import draw_face, synthetic_framing
from PIL import Image
from test_recipe_errors import one_line_error

from mdt.align import FacePoints, align, similarity
from mdt.errors import MdtError

SIZE = 64


def centroids(pixels: np.ndarray) -> FacePoints:
    """Where the drawn face's parts are, read off the pixels: the dark eyes (left and right
    of the image's middle, upper half) and the red mouth; pixel centres at +0.5."""
    r, g, b = (pixels[..., i].astype(float) for i in range(3))
    height, width = r.shape
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    dark = (r < 70) & (g < 70) & (b < 70)
    red = (r > 100) & (g < 0.68 * r) & (b < 0.68 * r)  # the mouths (217, 25, 38) and (140, 77, 77); skin has g ≈ 0.78 r
    middle_x = xs[red].mean()
    upper = ys < ys[red].mean() - 0.1 * height

    def centre(mask: np.ndarray) -> tuple[float, float]:
        assert mask.sum() > 3, "part not found"
        return float(xs[mask].mean()), float(ys[mask].mean())

    return FacePoints(centre(dark & upper & (xs < middle_x)), centre(dark & upper & (xs > middle_x)), centre(red))


@pytest.fixture(scope="module")
def askew_photo():
    """A blond, smiling face without glasses, rotated 17 degrees, scaled 1.6 and shifted on
    a 240 x 200 canvas; returns the photo and its parts' true positions."""
    face = draw_face(hair=1, glasses=False, smiling=True, size=128, generator=torch.Generator().manual_seed(3))
    pixels = (face.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    truth = centroids(pixels)
    angle, scale, shift = math.radians(17), 1.6, np.array([30.0, 5.0])
    rotation = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    forward = np.hstack([rotation, shift[:, None]])  # face pixels -> photo pixels
    inverse = np.linalg.inv(np.vstack([forward, [0, 0, 1]]))[:2]
    photo = Image.fromarray(pixels).transform(
        (240, 200), Image.Transform.AFFINE, tuple(inverse.ravel()), Image.Resampling.BILINEAR, fillcolor=(90, 160, 90)
    )
    moved = FacePoints(*(tuple(forward @ np.array([*p, 1.0])) for p in (truth.left_eye, truth.right_eye, truth.mouth)))
    return photo, moved


def test_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 100, size=(5, 2))
    angle = 0.4
    matrix = 1.7 * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = points @ matrix.T + [3.0, -8.0]
    found = similarity(points, moved)
    np.testing.assert_allclose(found[:, :2], matrix, atol=1e-9)
    np.testing.assert_allclose(found[:, 2], [3.0, -8.0], atol=1e-9)


def test_an_askew_face_lands_on_the_datasets_framing(askew_photo):
    photo, points = askew_photo
    aligned, way = align(photo, synthetic_framing({}), SIZE, detector=lambda image: points)
    assert way == "landmarks" and aligned.size == (SIZE, SIZE)
    found = centroids(np.asarray(aligned))
    wanted = synthetic_framing({}).array() * SIZE
    # The parts as seen in the output image sit where the training images have them.
    np.testing.assert_allclose(found.array(), wanted, atol=1.0)
    upright = found.right_eye[1] - found.left_eye[1]
    assert abs(upright) <= 1.0  # the 17 degrees are undone (to a pixel)


def test_without_landmarks_or_a_face_the_centre_square_is_taken(askew_photo):
    photo, _ = askew_photo
    expected = np.asarray(photo.crop((20, 0, 220, 200)).resize((SIZE, SIZE), Image.Resampling.BICUBIC))
    for detector in (None, lambda image: None):
        aligned, way = align(photo, synthetic_framing({}), SIZE, detector)
        assert way == "centre crop" and np.array_equal(np.asarray(aligned), expected)


def test_fan_points_come_from_the_heatmap_peaks_in_photo_pixels(askew_photo):
    """FAN sees the centre square at 256 px; its peaks are mapped back into the photo."""
    from mdt_stargan_v2.landmarks import EYES, MOUTH, FanFacePoints

    photo, _ = askew_photo  # 240 x 200: the centre square starts at x = 20
    peaks = {
        **dict.fromkeys(range(*EYES["left_eye"]), (64, 100)),
        **dict.fromkeys(range(*EYES["right_eye"]), (190, 100)),
        **dict.fromkeys(range(*MOUTH), (128, 180)),
    }

    class Stub:
        def __init__(self, height: float) -> None:
            self.height = height

        def heatmaps(self, images):
            assert images.shape == (1, 3, 256, 256)
            maps = torch.zeros(1, 98, 256, 256)
            for index, (x, y) in peaks.items():
                maps[0, index, y, x] = self.height
            return maps

    detector = FanFacePoints.__new__(FanFacePoints)
    detector.network = Stub(0.9)
    points = detector(photo)
    side = 200 / 256
    assert points.left_eye == pytest.approx((20 + 64.5 * side, 100.5 * side))
    assert points.right_eye == pytest.approx((20 + 190.5 * side, 100.5 * side))
    assert points.mouth == pytest.approx((20 + 128.5 * side, 180.5 * side))
    detector.network = Stub(0.05)  # weak peaks: no face
    assert detector(photo) is None


def test_celeba_framing_is_the_mean_of_its_landmark_file(tmp_path):
    from mdt_datasets.celeba import celeba_framing

    (tmp_path / "list_landmarks_align_celeba.txt").write_text(
        "2\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y\n"
        "000001.jpg 69  109 106  113  77  142  73  152 108  154\n"
        "000002.jpg 71  113 107  113  90  136  69  152 105  152\n"
    )
    framing = celeba_framing({"root": str(tmp_path), "crop_size": 178})
    # 178 x 218 images, centre crop of 178: 20 rows off the top.
    assert framing.left_eye == pytest.approx((70 / 178, (111 - 20) / 178))
    assert framing.right_eye == pytest.approx((106.5 / 178, (113 - 20) / 178))
    assert framing.mouth == pytest.approx(((73 + 108 + 69 + 105) / 4 / 178, ((152 + 154 + 152 + 152) / 4 - 20) / 178))
    with pytest.raises(MdtError, match=r"list_landmarks_align_celeba\.txt"):
        celeba_framing({"root": str(tmp_path / "elsewhere")})
    (tmp_path / "list_landmarks_align_celeba.txt").write_text("1\nheader\n000001.jpg 69 109 106 eleven\n")
    with pytest.raises(MdtError, match="expected lines 'file lefteye_x"):
        celeba_framing({"root": str(tmp_path)})


def test_mdt_align_and_translate_align_agree(quickstart_run, cli, tmp_path, askew_photo):
    photo, _ = askew_photo
    photo.save(tmp_path / "photo.png")
    result = cli("align", "photo.png", "aligned.png", "--checkpoint", quickstart_run)
    assert result.exit_code == 0, result.output
    assert "1 by centre crop" in result.output  # no landmark weights given: the documented fallback
    size = Image.open(tmp_path / "aligned.png").size
    assert size == (32, 32)  # the model's image size
    assert (
        cli("translate", "--checkpoint", quickstart_run, "--input", "aligned.png", "--output", "a.png", "--to", "Blond_Hair").exit_code == 0
    )
    result = cli("translate", "--checkpoint", quickstart_run, "--input", "photo.png", "--output", "b.png", "--to", "Blond_Hair", "--align")
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png")))


def test_align_refuses_what_it_cannot_do(quickstart_run, cli, tmp_path, askew_photo):
    from conftest import REPO

    askew_photo[0].save(tmp_path / "photo.png")
    (tmp_path / "w.ckpt").write_bytes(b"x")
    assert "give --checkpoint (a model) or --recipe" in one_line_error(cli("align", "photo.png", "o.png"))
    line = one_line_error(
        cli("align", "photo.png", "o.png", "--recipe", REPO / "recipes" / "stargan_v2_afhq.toml", "--landmarks", "w.ckpt")
    )
    assert "says where its faces sit" in line
    assert "must be a .png file" in one_line_error(cli("align", "photo.png", "o.jpg", "--checkpoint", quickstart_run))
    assert "--size 4: give a size from 8" in one_line_error(
        cli("align", "photo.png", "o.png", "--checkpoint", quickstart_run, "--size", "4")
    )
    line = one_line_error(
        cli(
            "translate",
            "--checkpoint",
            quickstart_run,
            "--input",
            "photo.png",
            "--output",
            "b.png",
            "--to",
            "Blond_Hair",
            "--landmarks",
            "w.ckpt",
        )
    )
    assert "--landmarks is for --align" in line
    line = one_line_error(
        cli(
            "translate",
            "--checkpoint",
            quickstart_run,
            "--input",
            "photo.png",
            "--output",
            "b.png",
            "--to",
            "Blond_Hair",
            "--align",
            "--crop",
            "100",
        )
    )
    assert "--align frames the face itself; leave out --crop" in line
    line = one_line_error(cli("align", "photo.png", "o.png", "--checkpoint", quickstart_run, "--landmarks", "w.ckpt"))
    assert "w.ckpt" in line and not (tmp_path / "o.png").exists()


def test_synthetic_framing_is_where_the_drawn_faces_have_their_parts():
    generator = torch.Generator().manual_seed(0)
    found = []
    for i in range(60):
        face = draw_face(hair=1, glasses=False, smiling=bool(i % 2), size=96, generator=generator)
        pixels = (face.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]]).astype(int)
        if (
            (border.max(axis=1) < 70) | ((border[:, 0] > 100) & (border[:, 1] < 0.68 * border[:, 0]) & (border[:, 2] < 0.68 * border[:, 0]))
        ).any():
            continue  # a background as dark as the eyes or as red as the mouth: the parts cannot be told apart
        found.append(centroids(pixels).array() / 96)
    assert len(found) >= 30
    np.testing.assert_allclose(np.mean(found, axis=0), synthetic_framing({}).array(), atol=0.01)
