"""Reference p-values for `rewardbench compare` and the length-baseline flag, from SciPy and
statsmodels (fixtures/stats/reference.json). Run in any venv with scipy and statsmodels:
    python export/stats_reference.py
The Rust tests compare their McNemar, Holm and Sidak values with these at 1e-9.
"""
import json
import random
from pathlib import Path

import numpy as np
import scipy
import statsmodels
from scipy.stats import binomtest
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

rng = random.Random(20240229)
cases = []
# Discordant counts: small, unbalanced, large (RewardBench subsets have up to 984 rows).
pairs = [(0, 0), (0, 1), (1, 0), (3, 7), (7, 3), (5, 5), (0, 10), (12, 30), (40, 41),
         (100, 60), (0, 200), (250, 310), (490, 494), (1, 983)]
pairs += [(rng.randint(0, 150), rng.randint(0, 150)) for _ in range(20)]
for b, c in pairs:
    # statsmodels wants the 2x2 table; only the off-diagonal matters for the exact test.
    table = [[10, b], [c, 10]]
    p = float(mcnemar(table, exact=True).pvalue)
    q = 1.0 if b + c == 0 else float(binomtest(min(b, c), b + c, 0.5).pvalue)
    cases.append({"b": b, "c": c, "statsmodels_mcnemar_exact": p, "scipy_binomtest": q})

families = []
for m in [1, 2, 5, 6, 23, 30]:
    p = [rng.random() ** 3 for _ in range(m)]
    if m >= 5:
        p[0] = p[1]  # a tie
        p[2] = 1e-12
    families.append({
        "p": p,
        "holm": multipletests(p, method="holm")[1].tolist(),
        "sidak": multipletests(p, method="sidak")[1].tolist(),
    })

out = {
    "generated_by": "export/stats_reference.py",
    "versions": {"scipy": scipy.__version__, "statsmodels": statsmodels.__version__, "numpy": np.__version__},
    "mcnemar": cases,
    "corrections": families,
}
path = Path(__file__).resolve().parent.parent / "fixtures" / "stats" / "reference.json"
path.write_text(json.dumps(out, indent=1) + "\n")
print(f"wrote {path}: {len(cases)} McNemar cases, {len(families)} families")
