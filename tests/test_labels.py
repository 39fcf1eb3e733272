"""Label schemas, including continuous labels (strengths in [0, 1])."""

from __future__ import annotations

import pytest
import torch

from mdt.errors import MdtError
from mdt.labels import LabelSchema, column_labels, part_agrees, part_loss, part_predict, schemas_from_json, schemas_to_json, set_labels

AUS = LabelSchema("faces", ("smile", "brow_raise"), continuous=True)


def test_a_continuous_schema_survives_a_checkpoint_and_an_old_one_reads_as_binary():
    assert schemas_from_json(schemas_to_json([AUS])) == [AUS]
    old = '[{"dataset": "celeba", "names": ["Male"], "exclusive": [], "categorical": false}]'  # written before 'continuous'
    assert schemas_from_json(old)[0].continuous is False
    with pytest.raises(ValueError, match="continuous labels are independent"):
        LabelSchema("x", ("a", "b"), exclusive=(("a", "b"),), continuous=True)


def test_continuous_values_are_set_in_range_and_never_flipped():
    labels = torch.tensor([[0.25, 0.5], [1.0, 0.0]])
    assert set_labels(AUS, labels, {"smile": 0.75}).tolist() == [[0.75, 0.5], [0.75, 0.0]]
    with pytest.raises(MdtError, match=r"label 'smile' must be set to a value in \[0, 1\], not 1.5"):
        set_labels(AUS, labels, {"smile": 1.5})
    # A grid column of a continuous label sets it; a binary one is flipped.
    assert column_labels(AUS, labels, {"smile": 1.0})[:, 0].tolist() == [1.0, 1.0]
    binary = LabelSchema("celeba", ("Male",))
    assert column_labels(binary, torch.tensor([[0.0], [1.0]]), {"Male": 1.0}).tolist() == [[1.0], [0.0]]
    with pytest.raises(MdtError, match=r"must be set to 0 or 1, not 0\.5"):
        set_labels(binary, torch.zeros(1, 1), {"Male": 0.5})


def test_continuous_labels_are_a_regression_read_within_a_tolerance():
    outputs = torch.tensor([[0.1, 1.3], [0.5, -0.2]])
    wanted = torch.tensor([[0.0, 1.0], [0.9, 0.0]])
    # Squared error summed over labels, averaged over the batch: (0.01 + 0.09 + 0.16 + 0.04) / 2.
    assert part_loss(AUS, outputs, wanted).item() == pytest.approx(0.15)
    read = part_predict(AUS, outputs)
    torch.testing.assert_close(read, torch.tensor([[0.1, 1.0], [0.5, 0.0]]))
    assert part_agrees(AUS, read, wanted).tolist() == [[True, True], [False, True]]  # 0.4 away: wrong
    assert part_agrees(AUS, torch.tensor([[0.2]]), torch.tensor([[0.0]])).item()  # within 0.2: right


def test_an_exclusive_group_is_read_as_its_most_likely_member_or_none():
    """Hair colours: the likeliest colour when any is likely, none when every logit says no
    (a bald head, a hat); the other attributes by their own sign."""
    hair = LabelSchema("celeba", ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male"), (("Black_Hair", "Blond_Hair", "Brown_Hair"),))
    logits = torch.tensor([[0.5, 2.0, 1.0, -1.0], [-0.5, -2.0, -1.0, 3.0], [-3.0, 0.1, -0.2, 0.0]])
    assert part_predict(hair, logits).tolist() == [[0, 1, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0]]


def test_condition_names_name_the_entries_that_encode_sets():
    """An exported generator's condition is fed by name (mdt.condition): each name must be
    the entry that encoding that label sets, for one dataset and for the mask vector."""
    from mdt_labels.encoders import MaskVector, MultiHot

    celeba = LabelSchema("celeba", ["Black_Hair", "Male"], [])
    rafd = LabelSchema("rafd", ["angry", "happy", "sad"], [["angry", "happy", "sad"]])
    single = MultiHot([celeba])
    assert single.condition_names() == ["celeba.Black_Hair", "celeba.Male"]
    both = MaskVector([celeba, rafd])
    names = both.condition_names()
    assert len(names) == both.condition_dim == 7
    happy = both.encode(torch.tensor([[0.0, 1.0, 0.0]]), source=1)[0]
    assert [names[i] for i in happy.nonzero().flatten().tolist()] == ["rafd.happy", "mask.rafd"]
    male = both.encode(torch.tensor([[0.0, 1.0]]), source=0)[0]
    assert [names[i] for i in male.nonzero().flatten().tolist()] == ["celeba.Male", "mask.celeba"]
