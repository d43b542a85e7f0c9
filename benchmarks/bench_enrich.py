"""Time carrier/province enrichment of N random Chinese mobiles (default one million).

    python benchmarks/bench_enrich.py [N]

The first run in a fresh cache also classifies every prefix it meets with phonenumbers
(reported separately); later runs are a pure vectorised lookup.
"""

import sys
import time

import numpy as np
import pandas as pd

from analysis import enrich
from analysis.enrichment import prefix_table


def main(n: int = 1_000_000) -> None:
    rng = np.random.default_rng(0)
    blocks = np.array(["134", "135", "136", "138", "139", "150", "158", "186", "130", "133", "189", "177", "171", "199"])
    digits = np.char.zfill(rng.integers(0, 10**8, size=n).astype(str), 8)
    phones = pd.Series(np.char.add("+86", np.char.add(rng.choice(blocks, size=n), digits)), dtype="string[pyarrow]")
    log = pd.DataFrame({"phone": phones, "carrier": pd.NA, "province": pd.NA, "city": pd.NA})
    t = time.perf_counter()
    prefix_table(phones.str.slice(3, 10).unique())
    warm = time.perf_counter() - t
    t = time.perf_counter()
    out = enrich(log)
    took = time.perf_counter() - t
    print(f"{n:,} numbers: classify new prefixes {warm:.1f} s (cached afterwards); enrich {took:.2f} s "
          f"({n / took:,.0f} numbers/s); province known for {out['province'].notna().mean():.1%}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
