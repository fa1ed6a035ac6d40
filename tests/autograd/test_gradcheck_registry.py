"""Every op registered with the gradcheck registry passes, and gradcheck itself catches
a wrong backward (a check that cannot fail proves nothing)."""
import numpy as np
import pytest

import scratchvision  # noqa: F401  (registers every op)
from scratchvision.autograd import Function, GradcheckError, gradcheck
from scratchvision.autograd.gradcheck import registered_gradchecks, run_case
from scratchvision.cli import main as cli_main

CASES = registered_gradchecks()


@pytest.mark.parametrize("name", list(CASES))
def test_registered_op_passes_gradcheck(name):
    r = run_case(CASES[name])
    assert r.ok, f"{name}: {r.worst}"
    assert r.checked > 0


class WrongSquare(Function):
    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, gy):
        return (gy * self.x,)  # should be 2 * x


def test_gradcheck_reports_wrong_backward_with_element():
    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(2, 3\)\) element"):
        gradcheck(lambda x: WrongSquare.apply(x), [np.ones((2, 3))])
    r = gradcheck(lambda x: WrongSquare.apply(x), [np.ones((2, 3))], raise_exception=False)
    assert not r.ok and r.max_abs_err > 0.1


class WrongAtOneElement(Function):
    def forward(self, x):
        return x * 1.0

    def backward(self, gy):
        g = gy.copy()
        g.reshape(-1)[7] = 0.0  # element 7's gradient is wrong
        return (g,)


def test_gradcheck_max_elements_samples_and_still_catches():
    x = np.ones((3, 4))
    r = gradcheck(lambda x: WrongAtOneElement.apply(x), [x], max_elements=5,
                  raise_exception=False, seed=0)
    assert r.checked == 5
    # every element is checked eventually: some seed draws element 7 and fails
    results = [gradcheck(lambda x: WrongAtOneElement.apply(x), [x], max_elements=3,
                         raise_exception=False, seed=s) for s in range(20)]
    failed = [r for r in results if not r.ok]
    assert failed and all("element (1, 3)" in r.worst for r in failed)
    assert any(r.ok for r in results)              # and draws without it pass
    full = gradcheck(lambda x: WrongAtOneElement.apply(x), [x], raise_exception=False)
    assert not full.ok and full.checked == 12


def test_gradcheck_cli_table(capsys):
    assert cli_main(["gradcheck", "relu", "soft*"]) == 0
    out = capsys.readouterr().out
    assert "relu" in out and "softmax" in out and "0 failed" in out
    assert cli_main(["gradcheck", "no_such_op"]) == 2
