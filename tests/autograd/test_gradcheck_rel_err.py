"""gradcheck reports the real maximum relative error over the checked elements (issue 19),
``|a - n| / max(|n|, |a|, atol)``, whether or not the tolerance test fails; before, the
column was computed only where the absolute tolerance failed and read 0 for every op."""
import numpy as np
import pytest

from scratchvision.autograd import Function, gradcheck


class ScaledGradient(Function):
    """y = scale * x, whose backward is off by the factor ``1 + error``."""

    def forward(self, x, scale, error):
        self.factor = scale * (1 + error)
        return x * scale

    def backward(self, gy):
        return (gy * self.factor, None, None)


@pytest.mark.parametrize("scale, error", [(1.0, 1e-4), (1e-3, 1e-3), (2.0, -0.05)])
def test_max_rel_err_is_the_relative_error_of_the_gradient(scale, error):
    x = np.random.default_rng(0).standard_normal((3, 4))
    r = gradcheck(lambda t: ScaledGradient.apply(t, scale, error), [x],
                  raise_exception=False)
    # every element: |a - n| = |error| |n| and max(|a|, |n|) = (1 + max(error, 0)) |n|
    expected = abs(error) / (1 + max(error, 0.0))
    assert r.max_rel_err == pytest.approx(expected, rel=1e-3)


def test_pass_fail_is_unchanged_by_the_report():
    x = np.random.default_rng(1).standard_normal((2, 3))
    # tiny gradients: the 0.1% error is below atol, so the check passes, and is reported
    small = gradcheck(lambda t: ScaledGradient.apply(t, 1e-3, 1e-3), [x],
                      raise_exception=False)
    assert small.ok and small.max_rel_err == pytest.approx(1e-3 / 1.001, rel=1e-3)
    large = gradcheck(lambda t: ScaledGradient.apply(t, 1.0, 0.05), [x],
                      raise_exception=False)
    assert not large.ok and large.max_rel_err == pytest.approx(0.05 / 1.05, rel=1e-3)


def test_near_zero_derivatives_do_not_explode():
    """Zero derivatives (numeric and analytic both ~0) report ~0, not noise / 1e-12."""
    x = np.random.default_rng(2).standard_normal((2, 3))
    r = gradcheck(lambda t: ScaledGradient.apply(t, 0.0, 0.0), [x], raise_exception=False)
    assert r.ok and r.max_rel_err < 1e-3
