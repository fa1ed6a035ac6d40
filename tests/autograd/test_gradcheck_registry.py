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


def test_gradcheck_cli_table(capsys):
    assert cli_main(["gradcheck", "relu", "soft*"]) == 0
    out = capsys.readouterr().out
    assert "relu" in out and "softmax" in out and "0 failed" in out
    assert cli_main(["gradcheck", "no_such_op"]) == 2
