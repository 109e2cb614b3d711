"""Unit tests for nlptune.kinds.crf (CRF loss, Viterbi, scheme constraints) and nlptune.models.crf: checked against
brute force over every tag path of tiny problems."""
from __future__ import annotations

import itertools

import pytest
import torch

from nlptune.kinds.base import LabelProblem
from nlptune.kinds.crf import allowed_transitions, crf_nll, viterbi, viterbi_at
from nlptune.models.crf import DISALLOWED, CRFTransitions

L = 3


def problem(lengths, seed=0, num_labels=L):
    """Random emissions, transitions and tags for rows of the given lengths (left-aligned masks, -100 outside)."""
    g = torch.Generator().manual_seed(seed)
    batch, length = len(lengths), max(max(lengths), 1)
    emissions = torch.randn(batch, length, num_labels, generator=g)
    transitions = torch.randn(num_labels + 2, num_labels + 2, generator=g)
    mask = torch.arange(length).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    tags = torch.randint(0, num_labels, (batch, length), generator=g).masked_fill(~mask, -100)
    return emissions, tags, mask, transitions


def path_score(emissions, path, transitions):
    """Score of one row's tag path (emissions [n, L])."""
    n = emissions.size(0)
    start, end = transitions.size(0) - 2, transitions.size(0) - 1
    score = transitions[start, path[0]] + transitions[path[-1], end]
    score = score + sum(emissions[t, path[t]] for t in range(n))
    return score + sum(transitions[path[t - 1], path[t]] for t in range(1, n))


def all_paths(n, num_labels=L):
    return list(itertools.product(range(num_labels), repeat=n))


def brute_nll(emissions, tags, lengths, transitions):
    total = torch.tensor(0.0, dtype=torch.float64)
    for b, n in enumerate(lengths):
        if n == 0:
            continue
        e = emissions[b, :n].double()
        scores = torch.stack([path_score(e, p, transitions.double()) for p in all_paths(n, e.size(1))])
        total += torch.logsumexp(scores, 0) - path_score(e, tags[b, :n].tolist(), transitions.double())
    return total / len(lengths)


def brute_best(emissions, lengths, transitions):
    best = torch.zeros(emissions.shape[:2], dtype=torch.long)
    for b, n in enumerate(lengths):
        if n:
            paths = all_paths(n, emissions.size(2))
            scores = torch.stack([path_score(emissions[b, :n], p, transitions) for p in paths])
            best[b, :n] = torch.tensor(paths[int(scores.argmax())])
    return best


LENGTHS = [(1,), (4,), (4, 2, 1), (3, 3), (2, 0, 4), (0, 0), (1, 4, 3, 2)]


@pytest.mark.parametrize("lengths", LENGTHS)
def test_nll_is_brute_force_log_softmax_over_paths(lengths):
    emissions, tags, mask, transitions = problem(lengths, seed=sum(lengths))
    got = crf_nll(emissions, tags, mask, transitions)
    assert got.shape == () and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), brute_nll(emissions, tags, lengths, transitions), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("lengths", LENGTHS)
def test_viterbi_is_brute_force_argmax(lengths):
    emissions, _, mask, transitions = problem(lengths, seed=10 + sum(lengths))
    assert torch.equal(viterbi(emissions, mask, transitions), brute_best(emissions, lengths, transitions))


def test_bf16_emissions_and_gradients():
    emissions, tags, mask, transitions = problem((4, 2))
    emissions = emissions.bfloat16().requires_grad_()
    transitions.requires_grad_()
    loss = crf_nll(emissions, tags, mask, transitions)
    assert loss.dtype == torch.float32
    loss.backward()
    assert emissions.grad.abs().sum() > 0 and transitions.grad.abs().sum() > 0
    # no gradient reaches a masked-out position
    assert emissions.grad[1, 2:].abs().sum() == 0
    assert viterbi(emissions.detach(), mask, transitions.detach()).dtype == torch.long


def test_nan_outside_the_mask_is_ignored():
    """An attention encoder gives NaN on a fully padded row: it must not reach the loss or the gradients."""
    emissions, tags, mask, transitions = problem((3, 1, 0))
    clean = crf_nll(emissions, tags, mask, transitions)
    emissions = emissions.masked_fill(~mask.unsqueeze(2), float("nan")).requires_grad_()
    loss = crf_nll(emissions, tags, mask, transitions)
    torch.testing.assert_close(loss, clean)
    loss.backward()
    assert torch.isfinite(emissions.grad).all() and emissions.grad[~mask].abs().sum() == 0
    assert viterbi(emissions.detach(), mask, transitions)[~mask].eq(0).all()


def test_nll_is_non_negative_and_lower_for_the_best_path():
    emissions, _, mask, transitions = problem((4, 3), seed=3)
    best = viterbi(emissions, mask, transitions)
    other = (best + 1) % L
    low, high = crf_nll(emissions, best, mask, transitions), crf_nll(emissions, other, mask, transitions)
    assert 0 <= low < high


# ---------------------------------------------------------------------------------------------
# tag schemes
# ---------------------------------------------------------------------------------------------
def allowed_pairs(names, scheme):
    table = allowed_transitions(names, scheme)
    full = list(names) + ["START", "END"]
    assert len(table) == len(full) and all(len(row) == len(full) for row in table)
    return {(full[i], full[j]) for i, row in enumerate(table) for j, ok in enumerate(row) if ok}


def test_allowed_iob2():
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    ok = allowed_pairs(names, "iob2")
    assert ("START", "B-PER") in ok and ("START", "O") in ok and ("START", "I-PER") not in ok
    assert ("O", "I-PER") not in ok and ("B-LOC", "I-PER") not in ok and ("I-LOC", "I-PER") not in ok
    assert ("B-PER", "I-PER") in ok and ("I-PER", "I-PER") in ok and ("I-PER", "B-PER") in ok
    assert ("I-PER", "O") in ok and ("B-PER", "B-LOC") in ok and ("I-LOC", "END") in ok and ("B-PER", "END") in ok
    assert not any(dst == "START" or src == "END" for src, dst in ok)
    # every transition into a B or O tag is allowed from any tag
    assert all((src, dst) in ok for src in names + ["START"] for dst in ("O", "B-PER", "B-LOC"))


def test_allowed_iob1():
    names = ["O", "I-PER", "B-PER", "I-LOC", "B-LOC"]
    ok = allowed_pairs(names, "iob1")
    assert ("START", "I-PER") in ok and ("START", "B-PER") not in ok and ("O", "I-LOC") in ok
    assert ("I-PER", "B-PER") in ok and ("B-PER", "B-PER") in ok and ("I-PER", "B-LOC") not in ok
    assert ("O", "B-PER") not in ok and ("I-LOC", "I-PER") in ok and ("B-PER", "END") in ok


def test_allowed_bioes():
    names = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "E-LOC", "S-LOC"]
    ok = allowed_pairs(names, "bioes")
    assert {("START", t) for t in ("O", "B-PER", "S-PER")} <= ok
    assert ("START", "I-PER") not in ok and ("START", "E-PER") not in ok
    assert ("B-PER", "I-PER") in ok and ("B-PER", "E-PER") in ok and ("I-PER", "E-PER") in ok
    assert ("B-PER", "E-LOC") not in ok and ("B-PER", "O") not in ok and ("B-PER", "END") not in ok
    assert ("E-PER", "B-LOC") in ok and ("S-PER", "S-LOC") in ok and ("E-PER", "I-PER") not in ok
    assert ("O", "E-PER") not in ok and ("S-LOC", "END") in ok and ("I-PER", "END") not in ok


def test_allowed_plain_and_bad_names():
    assert allowed_transitions(["PER", "LOC"], "plain") == [[True] * 4 for _ in range(4)]
    with pytest.raises(LabelProblem, match="'PER'"):
        allowed_transitions(["O", "PER"], "iob2")
    with pytest.raises(LabelProblem, match="S-PER"):
        allowed_transitions(["O", "S-PER"], "iob1")
    assert allowed_transitions(["O", "B_PER", "I_PER"], "iob2")[1][2]  # underscore separator
    with pytest.raises(ValueError, match="unknown tag scheme"):
        allowed_transitions(["O"], "bilou")


def is_valid(path, names, table):
    start, end = len(names), len(names) + 1
    steps = [start, *path, end]
    return all(table[a][b] for a, b in zip(steps, steps[1:]))


@pytest.mark.parametrize("scheme,names", [
    ("iob2", ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]),
    ("bioes", ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]),
])
def test_constrained_viterbi_never_takes_a_disallowed_transition(scheme, names):
    table = allowed_transitions(names, scheme)
    crf = CRFTransitions(len(names))
    crf.constrain(table)
    lengths = [1, 2, 3, 5, 8, 8, 6, 4] * 4
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        crf.transitions.normal_(generator=g)
    # emissions that strongly prefer I-/E- tags: unconstrained decoding would break the scheme
    emissions = torch.randn(len(lengths), 8, len(names), generator=g) * 3
    emissions[..., [i for i, n in enumerate(names) if n[0] in "IE"]] += 5
    mask = torch.arange(8).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    paths = viterbi(emissions, mask, crf())
    assert not all(is_valid(p[:n].tolist(), names, table) for p, n in
                   zip(viterbi(emissions, mask, crf.transitions.detach()), lengths))  # the test can fail
    for path, n in zip(paths, lengths):
        assert is_valid(path[:n].tolist(), names, table)
        assert path[n:].eq(0).all()


def test_crf_transitions_module():
    crf = CRFTransitions(2)
    assert torch.equal(crf(), torch.zeros(4, 4)) and crf.allowed.all()
    table = allowed_transitions(["B-X", "I-X"], "iob2")
    crf.constrain(table)
    out = crf()
    assert torch.equal(out == DISALLOWED, ~torch.tensor(table))
    assert "allowed" in crf.state_dict()  # saved with the weights
    out.sum().backward()
    assert torch.equal(crf.transitions.grad, torch.tensor(table, dtype=torch.float32))  # no gradient if disallowed
    with pytest.raises(ValueError, match="shape"):
        crf.constrain([[True] * 3] * 3)


# decoding a tagger without a CRF under its tag scheme (task.constrained_decoding)
def test_banned_score_is_the_crf_layers():
    from nlptune.kinds.crf import BANNED

    assert BANNED == DISALLOWED


@pytest.mark.parametrize("seed", range(6))
def test_viterbi_at_scattered_positions_is_brute_force_over_them(seed):
    g = torch.Generator().manual_seed(seed)
    emissions, transitions = torch.randn(4, 7, L, generator=g), torch.randn(L + 2, L + 2, generator=g)
    positions = torch.rand(4, 7, generator=g) < 0.5
    positions[0] = False  # a window without a word
    got = viterbi_at(emissions, positions, transitions)
    for b in range(4):
        marked = positions[b].nonzero().squeeze(1)
        lengths = [len(marked)]
        best = brute_best(emissions[b, marked].unsqueeze(0), lengths, transitions)[0]
        assert torch.equal(got[b, marked], best[: len(marked)])
        others = ~positions[b]  # positions without a word keep their best-scoring tag
        assert torch.equal(got[b, others], emissions[b, others].argmax(-1))


def test_tokens_kind_decodes_only_sequences_its_scheme_allows():
    from nlptune.kinds import get_kind

    kind, names = get_kind("tokens"), ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    decoding = kind.decoding(names, "iob2", True)
    table = allowed_transitions(names, "iob2")
    assert torch.equal(decoding == DISALLOWED, ~torch.tensor(table)) and decoding.max() == 0
    for off in [kind.decoding(names, "iob2", False), kind.decoding(names, "plain", True),
                kind.decoding(["NN", "VB"], "iob2", True)]:
        assert off is None
    # sub-token positions (-100) between words: an I-LOC after O is what argmax reads at the second word
    logits = torch.full((1, 5, 5), -4.0)
    for position, tag, score in [(0, 0, 3.0), (2, 4, 3.0), (2, 3, 2.5), (2, 0, 1.0), (3, 4, 3.0), (4, 2, 2.0)]:
        logits[0, position, tag] = score
    labels = torch.tensor([[0, -100, 0, 0, -100]])
    assert kind.predictions(logits)[0, [0, 2, 3]].tolist() == [0, 4, 4]
    constrained = kind.predictions(logits, labels=labels, decoding=decoding)
    assert constrained[0, [0, 2, 3]].tolist() == [0, 3, 4]  # O B-LOC I-LOC
    assert constrained[0, [1, 4]].tolist() == [0, 2]  # the positions without a word keep their argmax
    # a CRF tagger decodes under its own transitions: the decoding of a softmax tagger is not applied
    transitions = torch.zeros(7, 7)
    crf = kind.predictions(logits, mask=torch.ones(1, 5), transitions=transitions, labels=labels,
                           decoding=decoding)
    assert torch.equal(crf, viterbi(logits, torch.ones(1, 5, dtype=torch.bool), transitions))
