"""The one budget rule (FitBudget.costs and fits), which fit's greedy and onboarding share."""

from __future__ import annotations

from leeroo_local.fit.plan import FitBudget

GB = 10**9


def test_resident_budget_sums_memory_and_counts_members():
    budget = FitBudget(ram_bytes=10 * GB, max_experts=2)
    assert budget.fits([4 * GB, 6 * GB], [1, 1])
    assert not budget.fits([4 * GB, 7 * GB], [1, 1])
    assert not budget.fits([1 * GB, 1 * GB, 1 * GB], [1, 1, 1])  # over max_experts


def test_swap_budget_takes_each_alone_and_sums_the_files():
    budget = FitBudget(ram_bytes=10 * GB, disk_bytes=20 * GB, mode="swap")
    assert budget.fits([9 * GB, 9 * GB, 9 * GB], [5 * GB, 5 * GB, 5 * GB])
    assert not budget.fits([11 * GB], [1 * GB])  # one does not fit the memory alone
    assert not budget.fits([1 * GB, 1 * GB], [15 * GB, 6 * GB])  # files over the disk
    assert not budget.fits([1 * GB] * 5, [1] * 5)  # over the default swap size limit
    unbounded = FitBudget(ram_bytes=10 * GB, mode="swap")
    assert unbounded.fits([9 * GB], [10**15]) and not unbounded.fits([11 * GB], [1])
