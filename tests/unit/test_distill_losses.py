"""Each kind's loss against a teacher's logits (`Kind.soft_loss`), compared with values worked out by hand."""
from __future__ import annotations

import math

import pytest
import torch

from nlptune.kinds import get_kind

# teacher logits [ln 3, 0]: softmax (0.75, 0.25); student [0, 0]: (0.5, 0.5)
KL_BY_HAND = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)  # 0.1308...


def test_single_label_kl_is_the_kl_of_the_softened_distributions_times_t_squared():
    kind = get_kind("single_label")
    student = torch.zeros(1, 2, requires_grad=True)
    loss = kind.soft_loss(student, torch.tensor([[math.log(3), 0.0]]), mode="kl", temperature=1.0)
    assert loss.item() == pytest.approx(KL_BY_HAND, rel=1e-6)
    # at T = 2, teacher logits twice as large soften to the same (0.75, 0.25): the same KL, times 4
    loss = kind.soft_loss(student, torch.tensor([[2 * math.log(3), 0.0]]), mode="kl", temperature=2.0)
    assert loss.item() == pytest.approx(4 * KL_BY_HAND, rel=1e-6)
    loss.backward()  # d/ds of T^2 KL = T (q - p): 2 * (0.5 - 0.75), 2 * (0.5 - 0.25)
    assert student.grad.tolist() == [pytest.approx([-0.5, 0.5], rel=1e-6)]


def test_single_label_kl_averages_rows_and_is_zero_when_they_agree():
    kind = get_kind("single_label")
    teacher = torch.tensor([[math.log(3), 0.0], [0.3, -1.2]])
    student = torch.tensor([[0.0, 0.0], [0.3, -1.2]])
    assert kind.soft_loss(student, teacher, mode="kl", temperature=1.0).item() == pytest.approx(KL_BY_HAND / 2)
    assert kind.soft_loss(teacher, teacher, mode="kl", temperature=3.0).item() == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("name", ["single_label", "multi_label"])
def test_mse_is_the_squared_error_between_logits_whatever_the_temperature(name):
    student, teacher = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.zeros(2, 2)
    for temperature in (1.0, 5.0):
        loss = get_kind(name).soft_loss(student, teacher, mode="mse", temperature=temperature)
        assert loss.item() == pytest.approx((1 + 4 + 9 + 16) / 4)


def test_multi_label_kl_is_the_bernoulli_kl_per_label():
    kind = get_kind("multi_label")
    student = torch.tensor([[0.0, 1.5]])
    teacher = torch.tensor([[math.log(3), 1.5]])  # label 0: p = 0.75 against q = 0.5; label 1 agrees
    loss = kind.soft_loss(student, teacher, mode="kl", temperature=1.0)
    assert loss.item() == pytest.approx(KL_BY_HAND / 2, rel=1e-5)
    loss = kind.soft_loss(student, 2 * teacher, mode="kl", temperature=2.0)
    # with T = 2 and doubled teacher logits, label 0 softens to p = 0.75 again; label 1's student 1.5 / 2 = 0.75
    # against teacher 3 / 2 = 1.5 no longer agrees: its Bernoulli KL is computed the same way by hand
    p, q = 1 / (1 + math.exp(-1.5)), 1 / (1 + math.exp(-0.75))
    label_1 = p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
    assert loss.item() == pytest.approx(4 * (KL_BY_HAND + label_1) / 2, rel=1e-5)


def test_regression_is_the_squared_error_to_the_teachers_score():
    kind = get_kind("regression")
    student, teacher = torch.tensor([[1.0], [2.0]]), torch.tensor([[0.5], [3.0]])
    assert kind.soft_loss(student, teacher, mode="mse", temperature=2.0).item() == pytest.approx((0.25 + 1) / 2)


def test_tokens_cannot_be_distilled():
    with pytest.raises(NotImplementedError, match="not supported for tokens"):
        get_kind("tokens").soft_loss(torch.zeros(1, 3, 2), torch.zeros(1, 3, 2), mode="kl", temperature=1.0)
