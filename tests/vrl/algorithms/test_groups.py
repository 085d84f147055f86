import pytest
import torch

from vrl.algorithms.groups import Groups
from vrl.algorithms.registry import Registry


def test_group_statistics_golden():
    g = Groups.from_ids(torch.tensor([30, 10, 30, 20, 10, 30]))
    values = torch.tensor([1.0, 2.0, 2.0, 5.0, 4.0, 6.0])
    assert g.num_groups == 3 and g.sizes.tolist() == [2, 1, 3]  # sorted ids 10, 20, 30
    torch.testing.assert_close(g.mean(values), torch.tensor([3.0, 5.0, 3.0]))
    # unbiased: group 10 var 2, group 30 var ((2² + 1 + 3²) / 2) = 7; singleton 0
    torch.testing.assert_close(g.std(values), torch.tensor([2.0, 0.0, 7.0]).sqrt())
    torch.testing.assert_close(g.std(values, unbiased=False), torch.tensor([1.0, 0.0, 14 / 3]).sqrt())
    assert g.is_constant(values).tolist() == [False, True, False]
    assert g.is_constant(torch.tensor([1, 1, 1, 0, 1, 1])).tolist() == [True, True, True]  # integers too
    torch.testing.assert_close(g.broadcast(torch.tensor([0.0, 1.0, 2.0])), torch.tensor([2.0, 0, 2, 1, 0, 2]))


def test_group_ids_validation():
    with pytest.raises(ValueError, match="1-D"):
        Groups.from_ids(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        Groups.from_ids(torch.zeros(2, dtype=torch.bool))


def test_registry_lists_known_names_and_rejects_duplicates():
    reg: Registry = Registry("widget")
    reg.register("b")(len)
    reg.register("a")(len)
    assert reg.names() == ["a", "b"] and "a" in reg and reg.get("a") is len
    with pytest.raises(ValueError, match=r"Unknown widget 'c'\. Known: a, b\."):
        reg.get("c")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(len)
